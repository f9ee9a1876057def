"""GET /api/ideas/{id}/: body as markdown and sanitized HTML, links both ways, status history."""

from __future__ import annotations

import pytest

from experiments.models import RunStatus
from experiments.selectors import idea_evidence
from ideas.models import IdeaLink, LinkType, StatusChange
from tests.api.conftest import assert_error, client_for
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, IdeaFactory, finished_run

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


def test_evidence_counts_each_experiments_latest_verdict_and_names_the_newest_run(anon_client, idea):
    first, second, third = (ExperimentSpecFactory(idea=idea, title=f"spec {n}") for n in range(3))
    finished_run(first, "supports", minutes_ago=50)
    finished_run(first, "supports", minutes_ago=40)  # a replication: still one experiment
    finished_run(second, "supports", minutes_ago=30)
    newest = finished_run(third, "refutes", minutes_ago=20)
    finished_run(third, "supports", minutes_ago=10, status=RunStatus.CANCELLED, partial=True)  # no verdict counts
    ExperimentRunFactory(spec=third)  # queued

    body = anon_client.get(f"/api/ideas/{idea.pk}/").json()

    assert body["evidence"] == {
        "experiments": 3,
        "runs": 6,
        "counts": {"supports": 2, "refutes": 1, "inconclusive": 0},
        "latest_run": {
            "id": newest.pk,
            "verdict": "refutes",
            "finished_at": body["evidence"]["latest_run"]["finished_at"],
            "url": f"http://testserver/runs/{newest.pk}/",
        },
    }
    assert body["evidence"]["latest_run"]["finished_at"].startswith(newest.finished_at.date().isoformat())
    assert (body["experiment_count"], body["run_count"], body["latest_verdict"]) == (3, 6, "refutes")
    # The same function the idea page's header line reads.
    page_evidence = idea_evidence(idea_id=idea.pk)
    assert body["evidence"]["counts"] == page_evidence.counts and page_evidence.latest == newest


def test_evidence_without_experiments_or_verdicts(anon_client, idea):
    expected = {"experiments": 0, "runs": 0, "counts": {"supports": 0, "refutes": 0, "inconclusive": 0}}
    assert anon_client.get(f"/api/ideas/{idea.pk}/").json()["evidence"] == expected | {"latest_run": None}
    finished_run(ExperimentSpecFactory(idea=idea), "")
    evidence = anon_client.get(f"/api/ideas/{idea.pk}/").json()["evidence"]
    assert evidence == expected | {"experiments": 1, "runs": 1, "latest_run": None}


def test_detail_costs_the_same_queries_however_many_specs_and_runs(anon_client, idea, django_assert_max_num_queries):
    def add(n: int) -> None:
        for k in range(n):
            spec = ExperimentSpecFactory(idea=idea)
            finished_run(spec, "supports", minutes_ago=k)
            finished_run(spec, "refutes", minutes_ago=k + 5)

    add(1)
    with django_assert_max_num_queries(100) as one:
        assert anon_client.get(f"/api/ideas/{idea.pk}/").status_code == 200
    add(6)
    with django_assert_max_num_queries(len(one.captured_queries)):
        evidence = anon_client.get(f"/api/ideas/{idea.pk}/").json()["evidence"]
    assert evidence["counts"]["supports"] == 7
