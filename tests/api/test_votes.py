"""POST and DELETE /api/ideas/{id}/vote/: idempotent, answering {score, voted}."""

from __future__ import annotations

import pytest

from ideas.models import IdeaStatus, Vote
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db


def vote_url(idea) -> str:
    return f"/api/ideas/{idea.pk}/vote/"


def test_vote_and_unvote_are_idempotent(user):
    idea = IdeaFactory(imported_votes=3)
    client = client_for(user)
    assert client.post(vote_url(idea)).json() == {"score": 4, "voted": True}
    assert client.post(vote_url(idea)).json() == {"score": 4, "voted": True}
    assert client.get(f"/api/ideas/{idea.pk}/").json()["voted"] is True
    assert client.delete(vote_url(idea)).json() == {"score": 3, "voted": False}
    assert client.delete(vote_url(idea)).json() == {"score": 3, "voted": False}
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 200), ("author", 200), ("staff", 200)])
@pytest.mark.parametrize("method", ["post", "delete"])
def test_who_may_vote(clients, authored_idea, role, status, method):
    response = getattr(clients[role], method)(vote_url(authored_idea))
    assert response.status_code == status, response.content
    if status == 401:
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["code"] == "not_authenticated"


def test_archived_ideas_take_no_votes(user):
    idea = IdeaFactory(status=IdeaStatus.ARCHIVED)
    body = assert_error(client_for(user).post(vote_url(idea)), 400, field="idea")
    assert "archived" in body["errors"]["idea"][0]


def test_vote_on_missing_idea_is_404(user):
    assert_error(client_for(user).post("/api/ideas/424242/vote/"), 404)


def test_vote_takes_no_query_parameters(user, idea):
    assert_error(client_for(user).post(vote_url(idea) + "?twice=1"), 400, field="twice")
