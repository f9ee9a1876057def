"""Spec and run services in-process (the worker-process tests are in test_lifecycle.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from experiments.errors import RunQuotaExceeded
from experiments.models import ExperimentRun, RunStatus, Verdict
from experiments.services import (
    run_cancel,
    run_execute,
    run_trigger,
    runs_reap,
    spec_create,
    verdict_for,
)
from experiments.services import runs as runs_module
from ideas.models import Idea, IdeaKind, IdeaStatus, StatusChange
from ideas.services import idea_set_status
from tests.factories import ExperimentRunFactory, IdeaFactory, UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

SUPPORT_IF_FIVE_STEPS = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}


@pytest.fixture
def author(db):
    return UserFactory()


@pytest.fixture
def hypothesis(author):
    return IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author)


def trigger_and_run(spec, user, **kwargs) -> ExperimentRun:
    run = run_trigger(spec=spec, user=user, **kwargs).run
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_spec_params_are_normalized_with_defaults(hypothesis, author):
    spec = smoke_spec(hypothesis, author, steps=3)
    assert spec.params == {
        "steps": 3,
        "delay_seconds": 0.0,
        "fail_at_step": None,
        "exit_at_step": None,
        "parts": None,
        "time_limit_seconds": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "nope"}, "kind"),
        ({"params": {"steps": 10**9}}, "params.steps"),
        ({"params": {"code": "import os"}}, "params.code"),
        ({"params": "steps=3"}, "params"),
        ({"title": "  "}, "title"),
        ({"seed": -1}, "seed"),
        ({"criterion": {"metric": "accuracy", "comparator": ">=", "threshold": 1, "if_met": "supports"}},
         "criterion.metric"),
        ({"criterion": {**SUPPORT_IF_FIVE_STEPS, "comparator": "=="}}, "criterion.comparator"),
        ({"criterion": {**SUPPORT_IF_FIVE_STEPS, "threshold": "high"}}, "criterion.threshold"),
        ({"criterion": {**SUPPORT_IF_FIVE_STEPS, "if_met": "proves"}}, "criterion.if_met"),
    ],
)  # fmt: skip
def test_bad_specs_are_refused_naming_the_field(hypothesis, author, kwargs, field):
    values = {"idea": hypothesis, "user": author, "title": "t", "kind": "smoke", "params": {}} | kwargs
    with pytest.raises(ValidationError) as excinfo:
        spec_create(**values)
    assert field in excinfo.value.message_dict


def test_only_the_idea_author_or_staff_pre_register_a_criterion(hypothesis):
    with pytest.raises(PermissionDenied):
        smoke_spec(hypothesis, UserFactory(), criterion=SUPPORT_IF_FIVE_STEPS)
    smoke_spec(hypothesis, UserFactory(), steps=1)  # a spec without a criterion is fine


def test_a_run_reference_to_a_missing_checkpoint_is_refused_before_queueing(hypothesis, author):
    from experiments.engine.models import RunModelRef
    from experiments.services.specs import _model_reference_errors

    class Params(__import__("pydantic").BaseModel):
        model: RunModelRef

    errors = _model_reference_errors(Params(model=RunModelRef(run=999, artifact="checkpoint-1")))
    assert errors == {"params.model": ["There is no run 999."]}


def test_trigger_sends_once_after_commit_and_caches_success(
    hypothesis, author, no_broker, django_capture_on_commit_callbacks
):
    spec = smoke_spec(hypothesis, author, steps=2)
    with django_capture_on_commit_callbacks(execute=True):
        first = run_trigger(spec=spec, user=author)
    assert first.created and no_broker == [first.run.pk]
    assert first.run.status == RunStatus.QUEUED and first.run.queue == "cpu"
    # A second trigger while it waits returns the same run: a double click never makes two.
    assert run_trigger(spec=spec, user=author).run.pk == first.run.pk
    run_execute(run_id=first.run.pk)
    cached = run_trigger(spec=spec, user=author)
    assert cached.cached and cached.run.pk == first.run.pk
    assert ExperimentRun.objects.count() == 1


def test_a_redelivered_message_never_runs_a_run_twice(hypothesis, author):
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=2), author)
    assert run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.attempts == 1 and run.status == RunStatus.SUCCEEDED


def test_anonymous_users_cannot_trigger_and_queued_runs_are_capped(hypothesis, author, settings):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        run_trigger(spec=smoke_spec(hypothesis, author), user=AnonymousUser())
    settings.RUN_QUEUE_CAP_PER_USER = 2
    for steps in (1, 2):
        run_trigger(spec=smoke_spec(hypothesis, author, steps=steps), user=author)
    with pytest.raises(RunQuotaExceeded):
        run_trigger(spec=smoke_spec(hypothesis, author, steps=3), user=author)


def test_failure_is_recorded_with_the_error(hypothesis, author):
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=5, fail_at_step=3), author)
    assert run.status == RunStatus.FAILED and "Failing at step 3" in run.error
    assert run.verdict == "" and run.finished_at is not None


def test_cancel_permissions_and_queued_cancel(hypothesis, author):
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=author).run
    with pytest.raises(PermissionDenied):
        run_cancel(run=run, user=UserFactory())
    run = run_cancel(run=run, user=author)
    assert run.status == RunStatus.CANCELLED
    assert run_execute(run_id=run.pk) is None  # it never starts


@pytest.mark.parametrize(
    ("criterion", "metrics", "verdict"),
    [
        ({"metric": "m", "comparator": ">=", "threshold": 0.5, "if_met": "supports", "otherwise": "refutes"},
         {"m": 0.5}, "supports"),
        ({"metric": "m", "comparator": ">", "threshold": 0.5, "if_met": "supports", "otherwise": "refutes"},
         {"m": 0.5}, "refutes"),
        ({"metric": "m", "comparator": "<", "threshold": 0.3, "if_met": "refutes", "otherwise": "inconclusive"},
         {"m": 0.1}, "refutes"),
        ({"metric": "m", "comparator": "<=", "threshold": 0.3, "if_met": "refutes", "otherwise": "inconclusive"},
         {"m": 0.9}, "inconclusive"),
        ({"metric": "m", "comparator": ">=", "threshold": 0.5, "if_met": "supports", "otherwise": "refutes"},
         {"m": None}, "inconclusive"),
        (None, {"m": 1}, ""),
    ],
)  # fmt: skip
def test_verdicts_follow_the_pre_registered_criterion(criterion, metrics, verdict):
    assert verdict_for(criterion, metrics) == verdict


def test_hypothesis_status_follows_verdicts_and_names_the_run(hypothesis, author):
    supports = smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=5)
    run = trigger_and_run(supports, author)
    assert run.verdict == Verdict.SUPPORTS
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.SUPPORTED
    change = StatusChange.objects.get(idea=hypothesis)
    assert change.run == run and change.changed_by is None and f"Run {run.pk}" in change.reason

    refutes = smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=4)  # not met: refutes
    trigger_and_run(refutes, author)
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.INCONCLUSIVE  # the verdicts disagree


def test_refuted_when_only_refuting_verdicts(hypothesis, author):
    trigger_and_run(smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=2), author)
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.REFUTED


def test_staff_override_wins_until_the_next_verdict(hypothesis, author):
    staff = UserFactory(is_staff=True)
    spec = smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=5)
    trigger_and_run(spec, author)
    idea_set_status(idea=hypothesis, status=IdeaStatus.IN_PROGRESS, user=staff, reason="needs a bigger model")
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.IN_PROGRESS
    trigger_and_run(spec, author, force=True)  # a replication brings a new verdict
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.SUPPORTED
    assert (
        list(StatusChange.objects.filter(idea=hypothesis).values_list("to_status", flat=True))
        == [
            "supported",
            "in_progress",
            "supported",
        ][::-1]
    )


def test_a_criterion_on_an_open_ended_idea_is_refused(author):
    idea = IdeaFactory(kind=IdeaKind.OPEN_ENDED, author=author)
    with pytest.raises(ValidationError) as caught:
        smoke_spec(idea, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=5)
    assert "Criteria are for hypotheses" in caught.value.message_dict["criterion"][0]
    assert smoke_spec(idea, author, steps=5).criterion is None  # without one it is an exploratory experiment


def test_an_idea_re_kinded_open_ended_gets_verdicts_but_keeps_its_status(author):
    idea = IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author)
    spec = smoke_spec(idea, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=5)
    Idea.objects.filter(pk=idea.pk).update(kind=IdeaKind.OPEN_ENDED)  # re-kinded after the spec was written
    run = trigger_and_run(spec, author)
    assert run.verdict == Verdict.SUPPORTS
    idea.refresh_from_db()
    assert idea.status == IdeaStatus.OPEN


def test_reaper_requeues_stale_runs_then_fails_them_when_attempts_run_out(hypothesis, author, no_broker):
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=author).run
    long_ago = timezone.now() - timedelta(minutes=10)
    ExperimentRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, attempts=1, max_attempts=2, heartbeat_at=long_ago
    )
    report = runs_reap(stale_after=60)
    assert report.requeued == [run.pk] and run.pk in report.resent
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and "Attempt 1 lost" in run.error

    ExperimentRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, attempts=2, heartbeat_at=long_ago)
    assert runs_reap(stale_after=60).failed == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "stopped sending heartbeats" in run.error


def test_a_requeued_run_starts_over_and_a_run_given_up_keeps_its_parts_without_files(hypothesis, author, no_broker):
    run = run_trigger(spec=smoke_spec(hypothesis, author, steps=4, parts=2), user=author).run
    long_ago = timezone.now() - timedelta(minutes=10)
    part = {"key": "P1", "label": "part 1", "metrics": {"sum": 3}, "findings": ["Counted 1, 2."], "artifacts": ["x"]}
    lost_attempt = {
        "status": RunStatus.RUNNING, "heartbeat_at": long_ago, "started_at": long_ago, "progress": 0.5,
        "parts": [part], "series": {"P1/count": [[1, 1]]},
    }  # fmt: skip
    ExperimentRun.objects.filter(pk=run.pk).update(attempts=1, max_attempts=2, **lost_attempt)
    runs_reap(stale_after=60)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.started_at is None and run.progress == 0
    assert run.parts == [] and run.series == {} and not run.partial  # the next attempt does it all again

    ExperimentRun.objects.filter(pk=run.pk).update(attempts=2, **lost_attempt)
    runs_reap(stale_after=60)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.partial
    assert run.metrics == {"P1_sum": 3} and run.findings == ["part 1: Counted 1, 2."]
    assert run.parts[0]["artifacts"] == []  # the dead process never recorded them: no broken links


def _broker_holds(monkeypatch, task_ids):
    """What the reaper finds in the broker: a set of waiting task ids, None (unreadable) or an exception."""
    from experiments import broker

    def inventory(queues):
        if isinstance(task_ids, Exception):
            raise task_ids
        return task_ids

    monkeypatch.setattr(broker, "waiting_task_ids", inventory)


def _age(run, *, sent_seconds_ago: float | None, created_seconds_ago: float = 3600):
    now = timezone.now()
    sent_at = None if sent_seconds_ago is None else now - timedelta(seconds=sent_seconds_ago)
    ExperimentRun.objects.filter(pk=run.pk).update(
        sent_at=sent_at, created_at=now - timedelta(seconds=created_seconds_ago)
    )


def test_reaper_sends_a_run_whose_send_failed_at_its_next_pass(hypothesis, author, no_broker, monkeypatch):
    from experiments.broker import BrokerUnavailable

    run = run_trigger(spec=smoke_spec(hypothesis, author), user=author).run
    _age(run, sent_seconds_ago=None, created_seconds_ago=30)  # the broker was down when it was triggered
    _broker_holds(monkeypatch, BrokerUnavailable("connection refused"))
    assert runs_reap().resent == [] and no_broker == []  # nothing is sent while the broker is down
    run.refresh_from_db()
    assert run.sent_at is None

    _broker_holds(monkeypatch, set())  # back, and empty
    assert runs_reap().resent == [run.pk]
    assert no_broker == [run.pk]
    run.refresh_from_db()
    assert run.sent_at is not None and run.status == RunStatus.QUEUED


def test_reaper_resends_a_run_whose_message_the_broker_lost_but_never_one_it_holds(
    hypothesis, author, no_broker, monkeypatch, settings
):
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=author).run
    _age(run, sent_seconds_ago=settings.RUN_RESEND_GRACE_SECONDS + 5)
    _broker_holds(monkeypatch, {run.task_id})  # its message is waiting: a busy lab, not a lost run
    assert runs_reap().resent == []

    _broker_holds(monkeypatch, set())  # the broker restarted without persistence
    assert runs_reap().resent == [run.pk]
    assert runs_reap().resent == []  # sent again just now: within the grace period

    _age(run, sent_seconds_ago=settings.RUN_RESEND_GRACE_SECONDS - 5, created_seconds_ago=60)
    assert runs_reap().resent == []  # a worker may be between taking the message and claiming the run


def test_reaper_falls_back_to_the_message_age_where_the_broker_cannot_be_read(
    hypothesis, author, no_broker, monkeypatch
):
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=author).run
    _age(run, sent_seconds_ago=3600)
    _broker_holds(monkeypatch, None)
    assert runs_reap(resend_after=7200).resent == []
    assert runs_reap(resend_after=60).resent == [run.pk]
    assert no_broker == [run.pk]


def test_a_zombie_attempt_cannot_overwrite_a_newer_one(hypothesis, author):
    run = ExperimentRunFactory(spec=smoke_spec(hypothesis, author), status=RunStatus.RUNNING, attempts=2)
    stale_view = ExperimentRun.objects.get(pk=run.pk)
    stale_view.attempts = 1  # what the first attempt believes
    assert runs_module._finish(stale_view, RunStatus.SUCCEEDED) is False
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_failure_while_storing_the_outcome_fails_the_run_instead_of_leaving_it_running(
    hypothesis, author, monkeypatch
):
    def broken_store(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runs_module, "_store_success", broken_store)
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=1), author)
    assert run.status == RunStatus.FAILED and "disk full" in run.error


def test_an_outcome_is_stored_once_the_database_is_back_instead_of_running_again(hypothesis, author, monkeypatch):
    from django.db import OperationalError

    real_store, refusals = runs_module._store_success, []

    def store_after_a_restart(*args, **kwargs):
        if len(refusals) < 3:
            refusals.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(runs_module, "_store_success", store_after_a_restart)
    monkeypatch.setattr(runs_module.time, "sleep", lambda seconds: None)
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=4), author)
    assert len(refusals) == 3
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 1
    assert run.metrics["steps_completed"] == 4


def test_an_outcome_the_database_never_takes_is_left_to_the_reaper(hypothesis, author, monkeypatch, settings):
    from django.db import OperationalError

    def refused(*args, **kwargs):
        raise OperationalError("the database system is shutting down")

    settings.RUN_FINAL_WRITE_RETRY_SECONDS = 3
    monkeypatch.setattr(runs_module, "_store_success", refused)
    monkeypatch.setattr(runs_module, "_finish", refused)
    monkeypatch.setattr(runs_module.time, "sleep", lambda seconds: None)
    spec = smoke_spec(hypothesis, author, steps=1)
    run = run_trigger(spec=spec, user=author).run
    with pytest.raises(OperationalError):
        run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # the reaper re-queues it once its heartbeat goes stale


def test_a_failed_run_tells_users_the_message_and_the_step_and_keeps_the_traceback_for_staff(hypothesis, author):
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=5, fail_at_step=3), author)
    assert run.status == RunStatus.FAILED
    assert "Failing at step 3" in run.error and "(at: step 2/5)" in run.error
    assert "Traceback" not in run.error and "/" not in run.error.split("(at:")[0]
    assert run.error_traceback.startswith("Traceback") and "smoke.py" in run.error_traceback


def test_the_manifest_is_stored_when_the_run_starts(hypothesis, author, monkeypatch):
    seen = {}
    real_execute = runs_module.execute

    def execute_and_look(kind, params, ctx):
        run = ExperimentRun.objects.get(status=RunStatus.RUNNING)
        seen.update(manifest=run.manifest, device=run.device)
        return real_execute(kind, params, ctx)

    monkeypatch.setattr(runs_module, "execute", execute_and_look)
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=2), author)
    assert seen["manifest"]["spec_hash"] == run.spec_hash and seen["manifest"]["attempt"] == 1
    assert seen["manifest"]["versions"]["torch"] and seen["device"] == "cpu"
    assert run.manifest == seen["manifest"]


def test_non_finite_numbers_in_a_summary_are_stored_as_null(hypothesis, author, monkeypatch):
    import dataclasses

    from experiments.engine.registry import KindResult, registry

    def diverged(params, ctx):
        return KindResult(findings=["one step"], metrics={"steps_completed": 1}, summary={"x": [float("nan")]})

    monkeypatch.setitem(registry._kinds, "smoke", dataclasses.replace(registry.get("smoke"), run=diverged))
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=1), author)
    assert run.status == RunStatus.SUCCEEDED and run.summary == {"x": [None]}


def test_worker_hooks_only_touch_the_attempt_their_process_ran(hypothesis, author):
    from experiments.services import run_time_limit_exceeded, run_worker_lost

    run = ExperimentRunFactory(
        spec=smoke_spec(hypothesis, author), status=RunStatus.RUNNING, attempts=2, worker="host-b:22"
    )
    assert run_worker_lost(run_id=run.pk, reason="died", worker="host-a:11") is None
    assert run_time_limit_exceeded(run_id=run.pk, seconds=5, worker="host-a:11") is False
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert run_worker_lost(run_id=run.pk, reason="died", worker="host-b:22") == RunStatus.QUEUED


def test_an_idea_with_runs_cannot_be_deleted_only_archived(hypothesis, author):
    from ideas.services.deletion import idea_delete

    run_trigger(spec=smoke_spec(hypothesis, author), user=author)
    with pytest.raises(ValidationError) as excinfo:
        idea_delete(idea=hypothesis, user=author)
    assert "Archive it instead" in str(excinfo.value)
    assert ExperimentRun.objects.count() == 1


def test_the_verdict_leaves_an_idea_archived_during_the_run_alone(hypothesis, author):
    run = run_trigger(spec=smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=5), user=author).run
    type(hypothesis).objects.filter(pk=hypothesis.pk).update(status=IdeaStatus.ARCHIVED)  # while it runs
    run_execute(run_id=run.pk)
    hypothesis.refresh_from_db()
    assert hypothesis.status == IdeaStatus.ARCHIVED


def test_a_run_that_fails_after_some_parts_keeps_their_results_marked_partial(hypothesis, author):
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=6, parts=3, fail_at_step=5), author)
    assert run.status == RunStatus.FAILED and "step 5" in run.error
    assert run.partial and [part["key"] for part in run.parts] == ["P1", "P2"]
    assert run.metrics == {"P1_steps": 2, "P1_sum": 3, "P2_steps": 2, "P2_sum": 7}
    assert run.findings == [
        "part 1: Counted steps 1 to 2; their sum is 3.",
        "part 2: Counted steps 3 to 4; their sum is 7.",
    ]
    assert run.verdict == ""  # a criterion may read a part the run never reached


def test_a_run_that_fails_before_any_part_is_not_partial(hypothesis, author):
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=6, parts=3, fail_at_step=1), author)
    assert run.status == RunStatus.FAILED and not run.partial and run.metrics == {} and run.findings == []


def test_a_succeeded_run_stores_its_findings_parts_and_log(hypothesis, author):
    run = trigger_and_run(smoke_spec(hypothesis, author, steps=4, parts=2), author)
    assert run.status == RunStatus.SUCCEEDED and not run.partial
    assert run.findings[0] == "Counted 4 steps; their sum is 10, as expected."
    assert [part["key"] for part in run.parts] == ["P1", "P2"] and run.metrics["P2_sum"] == 7
    assert {"part 1: finished", "part 2: finished", "done"} <= {entry["message"] for entry in run.log}
    assert set(run.series) == {"P1/count", "P2/count"}
