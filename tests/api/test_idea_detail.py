"""GET /api/ideas/{id}/: body as markdown and sanitized HTML, links both ways, status history."""

from __future__ import annotations

import pytest

from ideas.models import IdeaLink, LinkType, StatusChange
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db


def test_detail_has_body_links_and_history(anon_client, staff):
    idea = IdeaFactory(body="**Bold** idea #7 <script>alert(1)</script>", legacy_number=1)
    target = IdeaFactory(title="Target", legacy_number=7)
    source = IdeaFactory(title="Source")
    IdeaLink.objects.create(source=idea, target=target, link_type=LinkType.EXPANDS)
    IdeaLink.objects.create(source=source, target=idea, link_type=LinkType.DUPLICATES)
    StatusChange.objects.create(idea=idea, from_status="open", to_status="in_progress", reason="go", changed_by=staff)

    body = anon_client.get(f"/api/ideas/{idea.pk}/").json()

    assert body["body"] == idea.body
    assert "<strong>Bold</strong>" in body["body_html"]
    assert "<script>" not in body["body_html"]
    assert f'href="{target.get_absolute_url()}"' in body["body_html"]  # "idea #7" links to idea 7's page
    assert [(link["link_type"], link["idea"]["title"]) for link in body["links_out"]] == [("expands", "Target")]
    assert [(link["link_type"], link["idea"]["title"]) for link in body["links_in"]] == [("duplicates", "Source")]
    assert body["links_out"][0]["idea"]["url"].endswith(f"/api/ideas/{target.pk}/")
    [change] = body["status_history"]
    assert (change["from_status"], change["to_status"], change["reason"], change["changed_by"]) == (
        "open",
        "in_progress",
        "go",
        staff.username,
    )
    assert body["allowed_statuses"] == ["open", "in_progress", "supported", "refuted", "inconclusive", "archived"]
    assert body["can_edit"] is False


@pytest.mark.parametrize(
    ("role", "can_edit"), [("anonymous", False), ("user", False), ("author", True), ("staff", True)]
)
def test_can_edit_is_for_the_caller(clients, authored_idea, role, can_edit):
    assert clients[role].get(f"/api/ideas/{authored_idea.pk}/").json()["can_edit"] is can_edit


def test_missing_idea_is_json_404(anon_client):
    body = assert_error(anon_client.get("/api/ideas/987654/"), 404, code="not_found")
    assert "987654" in body["detail"]


def test_huge_id_is_404_not_500(user):
    assert_error(client_for(user).get("/api/ideas/99999999999999999999999/"), 404)
    assert_error(client_for(user).post("/api/ideas/99999999999999999999999/vote/"), 404)


def test_unknown_query_parameter_on_detail_is_400(anon_client, idea):
    assert_error(anon_client.get(f"/api/ideas/{idea.pk}/", {"expand": "all"}), 400, field="expand")


def test_status_history_endpoint(anon_client, idea, staff):
    StatusChange.objects.create(idea=idea, from_status="open", to_status="in_progress", changed_by=staff)
    StatusChange.objects.create(idea=idea, from_status="in_progress", to_status="supported", changed_by=None)
    history = anon_client.get(f"/api/ideas/{idea.pk}/status-history/").json()
    assert [(c["from_status"], c["to_status"], c["changed_by"]) for c in history] == [
        ("in_progress", "supported", None),
        ("open", "in_progress", staff.username),
    ]
    assert_error(anon_client.get("/api/ideas/424242/status-history/"), 404)
