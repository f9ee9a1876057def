"""POST /api/ideas/{id}/links/: the source idea's author or staff link it to another idea."""

from __future__ import annotations

import pytest

from ideas.models import IdeaLink
from tests.api.conftest import assert_error
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db


def links_url(idea) -> str:
    return f"/api/ideas/{idea.pk}/links/"


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 403), ("author", 201), ("staff", 201)])
def test_who_may_link(clients, authored_idea, role, status):
    target = IdeaFactory()
    response = clients[role].post(
        links_url(authored_idea), {"target": target.pk, "link_type": "expands"}, format="json"
    )
    assert response.status_code == status, response.content
    assert IdeaLink.objects.filter(source=authored_idea, target=target, link_type="expands").exists() is (status == 201)


def test_link_is_returned_and_idempotent(clients, authored_idea):
    target = IdeaFactory(title="Target")
    first = clients["author"].post(links_url(authored_idea), {"target": target.pk}, format="json").json()
    again = clients["author"].post(links_url(authored_idea), {"target": target.pk}, format="json").json()
    assert first == again
    assert first["link_type"] == "relates_to"
    assert (first["source"]["id"], first["target"]["title"]) == (authored_idea.pk, "Target")
    assert IdeaLink.objects.count() == 1
    detail = clients["anonymous"].get(f"/api/ideas/{target.pk}/").json()
    assert [link["idea"]["id"] for link in detail["links_in"]] == [authored_idea.pk]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "target"),
        ({"target": 424242}, "target"),
        ({"target": "x"}, "target"),
        ({"target": 1, "link_type": "cites"}, "link_type"),
    ],
)
def test_bad_link_input(clients, authored_idea, payload, field):
    assert_error(clients["author"].post(links_url(authored_idea), payload, format="json"), 400, field=field)


def test_an_idea_cannot_link_to_itself(clients, authored_idea):
    response = clients["author"].post(links_url(authored_idea), {"target": authored_idea.pk}, format="json")
    assert_error(response, 400, field="target")


def test_link_from_missing_idea_is_404(clients, idea):
    assert_error(clients["staff"].post("/api/ideas/424242/links/", {"target": idea.pk}, format="json"), 404)
