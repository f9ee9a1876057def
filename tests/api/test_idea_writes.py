"""POST /api/ideas/, PATCH and DELETE /api/ideas/{id}/: who may, and what bad input gets."""

from __future__ import annotations

import json

import pytest

from ideas.models import Idea, IdeaStatus
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db
NEW_IDEA = {
    "title": "  Probing  for deception ",
    "kind": "hypothesis",
    "body": "# Why\n",
    "tags": ["probing", "Deception"],
}


def test_signed_in_user_creates_an_idea(user):
    response = client_for(user).post("/api/ideas/", NEW_IDEA, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    idea = Idea.objects.get(pk=body["id"])
    assert (idea.title, idea.author, idea.status, idea.score) == ("Probing for deception", user, "open", 0)
    assert body["slug"] == "probing-for-deception" and body["can_edit"] is True
    assert sorted(tag["slug"] for tag in body["tags"]) == ["deception", "probing"]
    assert body["body_html"] == "<h1>Why</h1>"


def test_anonymous_cannot_create(anon_client):
    body = assert_error(anon_client.post("/api/ideas/", NEW_IDEA, format="json"), 401, code="not_authenticated")
    assert "credentials" in body["detail"]
    assert Idea.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "hypothesis"}, "title"),
        ({"title": "   ", "kind": "hypothesis"}, "title"),
        ({"title": "x" * 301, "kind": "hypothesis"}, "title"),
        ({"title": "T"}, "kind"),
        ({"title": "T", "kind": "theory"}, "kind"),
        ({"title": "T", "kind": "hypothesis", "tags": "one"}, "tags"),
        ({"title": "T", "kind": "hypothesis", "tags": ["x" * 65]}, "tags.0"),
        ({"title": "T", "kind": "hypothesis", "tags": ["!!!"]}, "tags"),
        ({"title": "T\ud800", "kind": "hypothesis"}, "title"),
        ({"title": "T\x00", "kind": "hypothesis"}, "title"),
    ],
)
def test_bad_input_is_400_naming_the_field(user, payload, field):
    # json.dumps escapes a lone surrogate as \ud800, as a real client's JSON would carry it.
    response = client_for(user).post("/api/ideas/", json.dumps(payload), content_type="application/json")
    assert_error(response, 400, field=field, code="invalid")
    assert Idea.objects.count() == 0


def test_malformed_json_is_400(user):
    response = client_for(user).post("/api/ideas/", "{not json", content_type="application/json")
    assert_error(response, 400, code="parse_error")


def test_deeply_nested_json_is_400_not_500(user):
    response = client_for(user).post("/api/ideas/", "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert_error(response, 400, code="parse_error")


def test_form_bodies_are_415(user):
    response = client_for(user).post("/api/ideas/", {"title": "T", "kind": "hypothesis"}, format="multipart")
    assert_error(response, 415, code="unsupported_media_type")


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 403), ("author", 200), ("staff", 200)])
def test_who_may_edit(clients, authored_idea, role, status):
    response = clients[role].patch(f"/api/ideas/{authored_idea.pk}/", {"title": "Renamed"}, format="json")
    assert response.status_code == status, response.content
    authored_idea.refresh_from_db()
    assert (authored_idea.title == "Renamed") is (status == 200)
    if status != 200:
        assert response.json()["detail"]


def test_edit_changes_only_what_is_sent(clients, authored_idea):
    authored_idea.tags.set([])
    response = clients["author"].patch(
        f"/api/ideas/{authored_idea.pk}/", {"body": "new body", "tags": ["a"]}, format="json"
    )
    assert response.status_code == 200
    authored_idea.refresh_from_db()
    assert authored_idea.body == "new body" and authored_idea.title.startswith("Idea number")
    assert [tag.slug for tag in authored_idea.tags.all()] == ["a"]


def test_kind_change_must_fit_the_status(clients, author):
    idea = IdeaFactory(author=author, status=IdeaStatus.SUPPORTED)
    response = clients["author"].patch(f"/api/ideas/{idea.pk}/", {"kind": "open_ended"}, format="json")
    body = assert_error(response, 400, field="status")
    assert "supported" in body["errors"]["status"][0]


def test_forbidden_comes_before_bad_input(clients, authored_idea):
    response = clients["user"].patch(f"/api/ideas/{authored_idea.pk}/", {"kind": "theory"}, format="json")
    assert_error(response, 403, code="permission_denied")


def test_edit_missing_idea_is_404(clients):
    assert_error(clients["staff"].patch("/api/ideas/424242/", {"title": "x"}, format="json"), 404)


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 403), ("author", 204), ("staff", 204)])
def test_who_may_delete(clients, authored_idea, role, status):
    response = clients[role].delete(f"/api/ideas/{authored_idea.pk}/")
    assert response.status_code == status, response.content
    assert Idea.objects.filter(pk=authored_idea.pk).exists() is (status != 204)


def test_put_is_not_allowed(clients, authored_idea):
    assert_error(clients["author"].put(f"/api/ideas/{authored_idea.pk}/", {"title": "x"}, format="json"), 405)
