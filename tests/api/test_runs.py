"""Runs through the API: trigger (queued, cached, forced, capped, throttled), list, detail, cancel, artifacts.

Runs execute in-process with `run_execute`; `_send` is replaced so no broker is needed.
"""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch

from api.throttles import TriggerThrottle
from experiments.models import Artifact, ExperimentRun, RunStatus
from experiments.services import run_execute, run_trigger
from ideas.models import IdeaKind, IdeaStatus
from tests.api.conftest import assert_error, client_for
from tests.factories import ExperimentRunFactory, IdeaFactory, UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

SUPPORT_IF_FIVE_STEPS = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}
RUN_FIELDS = {
    "id", "url", "spec", "idea", "kind", "params", "seed", "spec_hash", "status", "progress", "progress_message",
    "attempts", "max_attempts", "queue", "waiting_for", "device", "worker", "cancel_requested", "forced",
    "created_by", "created_at", "started_at", "finished_at", "heartbeat_at", "metrics", "verdict", "error", "artifacts",
    "can_cancel", "elapsed_seconds", "seconds_left", "duration_seconds", "findings", "partial", "headline",
}  # fmt: skip
DETAIL_FIELDS = RUN_FIELDS | {"series", "parts", "log", "summary", "manifest"}


@pytest.fixture
def spec(author, authored_idea):
    """A smoke spec of the author's hypothesis."""
    return smoke_spec(authored_idea, author, steps=3)


def trigger_url(spec) -> str:
    return f"/api/experiments/{spec.pk}/runs/"


def finished_run(spec, user) -> ExperimentRun:
    run = run_trigger(spec=spec, user=user).run
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def page_url(run) -> str | None:
    try:
        return "http://testserver" + run.get_absolute_url()
    except NoReverseMatch:  # the run pages are not mounted
        return None


# --- triggering --------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 202), ("author", 202), ("staff", 202)])
def test_who_may_trigger(clients, spec, role, status):
    response = clients[role].post(trigger_url(spec), format="json")
    assert response.status_code == status, response.content
    assert ExperimentRun.objects.count() == (status == 202)
    if status == 401:
        assert response["WWW-Authenticate"] == "Token"


def test_trigger_queues_once_then_answers_from_the_cache(user, spec, no_broker, django_capture_on_commit_callbacks):
    client = client_for(user)
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(trigger_url(spec), format="json")
    assert queued.status_code == 202, queued.content
    body = queued.json()
    assert set(body) == DETAIL_FIELDS | {"cached", "created"}
    assert (body["status"], body["created"], body["cached"], body["forced"]) == ("queued", True, False, False)
    assert queued["Location"] == f"http://testserver/api/runs/{body['id']}/"
    assert no_broker == [body["id"]]

    again = client.post(trigger_url(spec), format="json")  # a double click: the same queued run
    assert again.status_code == 202
    assert (again.json()["id"], again.json()["created"], again.json()["cached"]) == (body["id"], False, False)

    run_execute(run_id=body["id"])
    cached = client.post(trigger_url(spec), format="json")
    assert cached.status_code == 200, cached.content
    assert (cached.json()["id"], cached.json()["cached"], cached.json()["created"]) == (body["id"], True, False)
    assert cached.json()["status"] == "succeeded"
    assert ExperimentRun.objects.count() == 1 and no_broker == [body["id"]]


def test_force_queues_a_replication(user, spec):
    first = finished_run(spec, user)
    response = client_for(user).post(trigger_url(spec), {"force": True}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["id"] != first.pk
    assert (body["forced"], body["created"], body["cached"], body["spec_hash"]) == (True, True, False, first.spec_hash)


def test_full_run_queue_is_429_naming_why(user, author, authored_idea, settings):
    settings.RUN_QUEUE_CAP_PER_USER = 1
    client = client_for(user)
    assert client.post(trigger_url(smoke_spec(authored_idea, author, steps=1)), format="json").status_code == 202
    response = client.post(trigger_url(smoke_spec(authored_idea, author, steps=2)), format="json")
    body = assert_error(response, 429, code="run_quota_exceeded")
    assert "1 queued runs" in body["detail"]
    assert int(response["Retry-After"]) > 0
    assert ExperimentRun.objects.count() == 1


def test_the_cap_counts_only_queued_runs_of_the_caller(user, spec, settings):
    settings.RUN_QUEUE_CAP_PER_USER = 1
    finished_run(spec, user)  # succeeded: it does not count
    assert client_for(UserFactory()).post(trigger_url(spec), {"force": True}, format="json").status_code == 202
    assert client_for(user).post(trigger_url(spec), {"force": True}, format="json").status_code == 202


def test_triggers_are_throttled_per_user(user, staff, spec, monkeypatch):
    monkeypatch.setattr(TriggerThrottle, "rate", "2/min")
    client = client_for(user)
    assert client.post(trigger_url(spec), format="json").status_code == 202
    assert client.post(trigger_url(spec), format="json").status_code == 202
    response = client.post(trigger_url(spec), format="json")
    assert_error(response, 429, code="throttled")
    assert int(response["Retry-After"]) > 0
    assert client.get("/api/runs/").status_code == 200  # reads do not count
    assert client_for(staff).post(trigger_url(spec), format="json").status_code == 202  # another user's budget


def test_params_no_longer_valid_are_400_naming_the_field(user, spec):
    type(spec).objects.filter(pk=spec.pk).update(params={"steps": 0})
    body = assert_error(client_for(user).post(trigger_url(spec), format="json"), 400, field="params.steps")
    assert body["detail"] == "Invalid input: params.steps."
    assert ExperimentRun.objects.count() == 0


@pytest.mark.parametrize(("payload", "field"), [({"force": "sometimes"}, "force"), ([1], "non_field_errors")])
def test_bad_trigger_bodies_are_400(user, spec, payload, field):
    assert_error(client_for(user).post(trigger_url(spec), payload, format="json"), 400, field=field)


def test_trigger_of_missing_spec_is_404(user):
    assert_error(client_for(user).post("/api/experiments/424242/runs/", format="json"), 404, code="not_found")


def test_verdict_shows_on_the_run_and_moves_the_idea(author):
    hypothesis = IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author)
    spec = smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=5)
    run = finished_run(spec, author)
    body = client_for(author).get(f"/api/runs/{run.pk}/").json()
    assert (body["verdict"], body["queue"]) == ("supports", "cpu")
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.SUPPORTED


# --- reading runs ------------------------------------------------------------------------------


def test_run_detail_after_an_in_process_run(author, spec):
    run = finished_run(spec, author)
    response = client_for(None).get(f"/api/runs/{run.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert body["url"] == page_url(run)
    assert body["spec"] == {"id": spec.pk, "title": "Count to three"}
    assert body["idea"]["id"] == spec.idea_id and body["idea"]["url"].endswith(f"/api/ideas/{spec.idea_id}/")
    assert (body["kind"], body["seed"], body["spec_hash"]) == ("smoke", 0, run.spec_hash)
    assert body["params"]["steps"] == 3
    assert (body["status"], body["progress"], body["progress_message"]) == ("succeeded", 1.0, "done")
    assert (body["attempts"], body["max_attempts"], body["queue"], body["device"]) == (1, 3, "cpu", "cpu")
    assert body["worker"] and body["heartbeat_at"] and body["started_at"] and body["finished_at"]
    assert (body["cancel_requested"], body["forced"], body["created_by"]) == (False, False, author.username)
    assert body["metrics"]["steps_completed"] == 3 and body["metrics"]["sum_of_steps"] == 6
    assert body["series"] == {"count": [[1, 1.0], [2, 2.0], [3, 3.0]]}
    assert (body["summary"], body["verdict"], body["error"], body["artifacts"]) == ({}, "", "", [])
    assert body["manifest"]["spec_hash"] == run.spec_hash and body["manifest"]["seed"] == 0
    assert body["can_cancel"] is False  # anonymous


def test_failed_run_shows_its_error(author, spec):
    failing = smoke_spec(spec.idea, author, steps=5, fail_at_step=2)
    run = finished_run(failing, author)
    body = client_for(None).get(f"/api/runs/{run.pk}/").json()
    assert body["status"] == "failed" and "Failing at step 2" in body["error"]


def test_missing_run_is_404(anon_client):
    assert_error(anon_client.get("/api/runs/424242/"), 404, code="not_found")


def test_list_filters_by_spec_idea_and_status(author, authored_idea):
    first = smoke_spec(authored_idea, author, steps=1)
    second = smoke_spec(authored_idea, author, steps=2)
    other_idea_spec = smoke_spec(IdeaFactory(), author, steps=1)
    done = finished_run(first, author)
    waiting = run_trigger(spec=second, user=author).run
    elsewhere = run_trigger(spec=other_idea_spec, user=author).run
    client = client_for(None)

    def ids(**query) -> list[int]:
        response = client.get("/api/runs/", query)
        assert response.status_code == 200, response.content
        return [run["id"] for run in response.json()["results"]]

    assert ids() == [elsewhere.pk, waiting.pk, done.pk]
    assert ids(spec=first.pk) == [done.pk]
    assert ids(idea=authored_idea.pk) == [waiting.pk, done.pk]
    assert ids(status="queued") == [elsewhere.pk, waiting.pk]
    assert ids(status="succeeded", idea=authored_idea.pk) == [done.pk]
    assert ids(status="") == [elsewhere.pk, waiting.pk, done.pk]
    first_item = client.get("/api/runs/", {"spec": first.pk}).json()["results"][0]
    assert set(first_item) == RUN_FIELDS


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"spec": 424242}, "spec"),
        ({"idea": 424242}, "idea"),
        ({"spec": "x"}, "spec"),
        ({"statuss": "queued"}, "statuss"),
        ({"page_size": 101}, "page_size"),
    ],
)
def test_bad_list_parameters_are_400(anon_client, query, field):
    assert_error(anon_client.get("/api/runs/", query), 400, field=field)


def test_page_past_the_end_is_404(anon_client):
    assert_error(anon_client.get("/api/runs/", {"page": 2}), 404)


def _add_runs(spec, user, count: int) -> None:
    for _ in range(count):
        run = run_trigger(spec=spec, user=user, force=True).run
        Artifact.objects.create(
            run=run, name="numbers", path=f"runs/{run.pk}/1/numbers.json", artifact_type="json",
            content_type="application/json", size=2, sha256="0" * 64,
        )  # fmt: skip


def _queries_for_list(client, expected: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/runs/", {"page_size": 100})
    assert len(response.json()["results"]) == expected
    return len(queries)


@pytest.mark.parametrize("signed_in", [False, True])
def test_list_costs_the_same_queries_for_2_or_20_runs(author, settings, signed_in):
    settings.RUN_QUEUE_CAP_PER_USER = 100
    client = client_for(UserFactory() if signed_in else None)
    specs = [smoke_spec(IdeaFactory(author=UserFactory()), author, steps=n) for n in (1, 2)]
    for spec in specs:
        _add_runs(spec, author, 1)
    few = _queries_for_list(client, 2)
    for spec in specs:
        _add_runs(spec, UserFactory(), 9)
    assert _queries_for_list(client, 20) == few


# --- cancelling --------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 403), ("author", 200), ("staff", 200)])
def test_who_may_cancel(clients, spec, role, status):
    run = run_trigger(spec=spec, user=UserFactory()).run  # started by someone else
    response = clients[role].post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == status, response.content
    run.refresh_from_db()
    assert (run.status == RunStatus.CANCELLED) is (status == 200)
    if status == 403:
        assert response.json() == {
            "detail": "Only the person who started the run, the idea's author or staff can cancel it.",
            "code": "permission_denied",
        }


def test_the_person_who_started_a_run_may_cancel_it(user, spec):
    run = run_trigger(spec=spec, user=user).run
    client = client_for(user)
    assert client.get(f"/api/runs/{run.pk}/").json()["can_cancel"] is True
    response = client.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert (body["status"], body["cancel_requested"], body["progress_message"]) == ("cancelled", True, "cancelled")
    assert run_execute(run_id=run.pk) is None  # it never starts


def test_cancelling_a_running_run_asks_it_to_stop(author, spec):
    run = ExperimentRunFactory(spec=spec, created_by=author, status=RunStatus.RUNNING)
    body = client_for(author).post(f"/api/runs/{run.pk}/cancel/").json()
    assert (body["status"], body["cancel_requested"], body["progress_message"]) == ("running", True, "cancelling")


def test_cancelling_a_finished_run_changes_nothing(author, spec):
    run = finished_run(spec, author)
    body = client_for(author).post(f"/api/runs/{run.pk}/cancel/").json()
    assert (body["status"], body["cancel_requested"]) == ("succeeded", False)


def test_cancel_of_missing_run_is_404(staff):
    assert_error(client_for(staff).post("/api/runs/424242/cancel/"), 404)


# --- artifacts ---------------------------------------------------------------------------------


@pytest.fixture
def artifact(author, spec, tmp_path):
    """A finished run with one JSON artifact on disk under ARTIFACT_ROOT (= tmp_path)."""
    run = finished_run(spec, author)
    content = b'{"heads": [1, 2]}'
    path = tmp_path / "runs" / str(run.pk) / "1" / "heads.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Artifact.objects.create(
        run=run,
        name="heads",
        path=f"runs/{run.pk}/1/heads.json",
        artifact_type="json",
        content_type="application/json",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def test_run_lists_its_artifacts_with_a_download_url(anon_client, artifact):
    artifacts = anon_client.get(f"/api/runs/{artifact.run_id}/").json()["artifacts"]
    assert artifacts == [
        {
            "name": "heads",
            "artifact_type": "json",
            "content_type": "application/json",
            "size": artifact.size,
            "sha256": artifact.sha256,
            "url": f"http://testserver/api/runs/{artifact.run_id}/artifacts/heads/",
        }
    ]


def add_artifacts_that_sort_wrongly_as_text(run) -> None:
    """Checkpoints at steps 10, 106, 1122 and 12 (text order), with a model prefix, and two other files."""
    names = [("numbers", "json", None), ("head_scores", "plotly", None)]
    names += [(f"checkpoint-{step}", "checkpoint", step) for step in (1122, 12, 106, 10)]
    names += [(f"L2-checkpoint-{step}", "checkpoint", step) for step in (100, 20)]
    for name, artifact_type, step in names:
        Artifact.objects.create(
            run=run, name=name, path=f"{name}.bin", artifact_type=artifact_type, content_type="application/json",
            size=1, sha256="0" * 64, meta={} if step is None else {"step": step},
        )  # fmt: skip


ARTIFACTS_IN_ORDER = [
    "head_scores",
    "numbers",
    "L2-checkpoint-20",
    "L2-checkpoint-100",
    "checkpoint-10",
    "checkpoint-12",
    "checkpoint-106",
    "checkpoint-1122",
]


def test_artifacts_are_listed_by_name_then_checkpoints_by_step(anon_client, author, spec):
    run = finished_run(spec, author)
    add_artifacts_that_sort_wrongly_as_text(run)
    detail = anon_client.get(f"/api/runs/{run.pk}/").json()
    assert [artifact["name"] for artifact in detail["artifacts"]] == ARTIFACTS_IN_ORDER
    listed = anon_client.get("/api/runs/", {"spec": spec.pk}).json()["results"][0]
    assert [artifact["name"] for artifact in listed["artifacts"]] == ARTIFACTS_IN_ORDER


def test_artifact_download(anon_client, artifact):
    response = anon_client.get(f"/api/runs/{artifact.run_id}/artifacts/heads/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="run-{artifact.run_id}-heads.json"'
    content = b"".join(response.streaming_content)
    assert content == b'{"heads": [1, 2]}'
    assert hashlib.sha256(content).hexdigest() == artifact.sha256


def test_unknown_artifact_is_404(anon_client, artifact):
    body = assert_error(anon_client.get(f"/api/runs/{artifact.run_id}/artifacts/nope/"), 404, code="not_found")
    assert "'nope'" in body["detail"]
    assert_error(anon_client.get("/api/runs/424242/artifacts/heads/"), 404)


def test_artifact_whose_file_is_missing_is_404(anon_client, artifact, tmp_path):
    (tmp_path / artifact.path).unlink()
    body = assert_error(anon_client.get(f"/api/runs/{artifact.run_id}/artifacts/heads/"), 404, code="not_found")
    assert "missing" in body["detail"]


def test_artifact_outside_the_root_is_never_served(anon_client, artifact, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-secret.txt"  # ARTIFACT_ROOT is tmp_path
    outside.write_text("no")
    Artifact.objects.filter(pk=artifact.pk).update(path=f"../{outside.name}")
    assert_error(anon_client.get(f"/api/runs/{artifact.run_id}/artifacts/heads/"), 404)
