"""POST /api/ideas/{id}/status/: staff change the status, within the idea's kind, and it is recorded."""

from __future__ import annotations

import pytest

from ideas.models import IdeaKind, StatusChange
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db


def status_url(idea) -> str:
    return f"/api/ideas/{idea.pk}/status/"


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 403), ("author", 403), ("staff", 200)])
def test_only_staff_change_the_status(clients, authored_idea, role, status):
    response = clients[role].post(status_url(authored_idea), {"status": "in_progress"}, format="json")
    assert response.status_code == status, response.content
    authored_idea.refresh_from_db()
    assert (authored_idea.status == "in_progress") is (status == 200)
    if status == 403:
        assert response.json()["detail"] == "Only staff can do this."


def test_change_is_recorded_with_who_and_why(staff, idea):
    body = client_for(staff).post(status_url(idea), {"status": "supported", "reason": "run 3"}, format="json").json()
    assert body["status"] == "supported"
    assert (body["change"]["from_status"], body["change"]["to_status"]) == ("open", "supported")
    assert (body["change"]["reason"], body["change"]["changed_by"]) == ("run 3", staff.username)
    change = StatusChange.objects.get()
    assert (change.changed_by, change.reason) == (staff, "run 3")


def test_setting_the_same_status_records_nothing(staff, idea):
    body = client_for(staff).post(status_url(idea), {"status": "open"}, format="json").json()
    assert body == {"status": "open", "change": None}
    assert StatusChange.objects.count() == 0


@pytest.mark.parametrize(("kind", "status"), [(IdeaKind.HYPOTHESIS, "resolved"), (IdeaKind.OPEN_ENDED, "supported")])
def test_status_must_fit_the_kind(staff, kind, status):
    idea = IdeaFactory(kind=kind)
    body = assert_error(
        client_for(staff).post(status_url(idea), {"status": status}, format="json"), 400, field="status"
    )
    assert "is not a status of" in body["errors"]["status"][0]
    assert StatusChange.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "status"), ({"status": "done"}, "status"), ({"status": "open", "reason": "x" * 2001}, "reason")],
)
def test_bad_status_input(staff, idea, payload, field):
    assert_error(client_for(staff).post(status_url(idea), payload, format="json"), 400, field=field)


def test_status_of_missing_idea_is_404(staff):
    assert_error(client_for(staff).post("/api/ideas/424242/status/", {"status": "open"}, format="json"), 404)
