"""The run lifecycle against a real Celery worker process (Redis in CI).

A run is never lost, duplicated or stuck: these tests kill workers, cancel
runs, overrun time limits and roll back transactions, and check the state
every run ends in.
"""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.db import transaction

from experiments.models import ExperimentRun, RunStatus, WorkerQueue
from experiments.selectors import live_queues, run_waiting_for
from experiments.services import run_cancel, run_trigger
from experiments.services import runs as runs_module
from tests.experiments.conftest import wait_for
from tests.factories import ExperimentRunFactory, smoke_spec

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def status_of(run) -> str:
    run.refresh_from_db()
    return run.status


def finished(run, timeout: float = 60) -> ExperimentRun:
    wait_for(lambda: status_of(run) in ("succeeded", "failed", "cancelled"), timeout=timeout, what=f"run {run.pk}")
    return run


def test_trigger_runs_to_success_with_metrics(start_worker, hypothesis, researcher):
    start_worker()
    result = run_trigger(spec=smoke_spec(hypothesis, researcher, seed=7, steps=5), user=researcher)
    assert result.created and not result.cached
    run = finished(result.run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.metrics["steps_completed"] == 5 and run.metrics["sum_of_steps"] == 15
    assert run.attempts == 1 and run.progress == 1.0
    assert [point[0] for point in run.series["count"]] == [1, 2, 3, 4, 5]
    assert run.manifest["spec_hash"] == run.spec_hash and run.manifest["seed"] == 7
    assert run.manifest["versions"]["torch"]
    assert run.findings[0] == "Counted 5 steps; their sum is 15, as expected."
    assert [entry["message"] for entry in run.log][-1] == "done" and run.estimated_finish_at is None


def test_identical_trigger_is_cached_and_force_replicates(start_worker, hypothesis, researcher, monkeypatch):
    start_worker()
    spec = smoke_spec(hypothesis, researcher, seed=7, steps=3)
    first = finished(run_trigger(spec=spec, user=researcher).run)
    assert first.status == RunStatus.SUCCEEDED

    sent = []
    real_send = runs_module._send
    monkeypatch.setattr(runs_module, "_send", lambda run: (sent.append(run.pk), real_send(run)))
    cached = run_trigger(spec=spec, user=researcher)
    assert cached.cached and cached.run.pk == first.pk and not cached.created
    assert sent == [] and ExperimentRun.objects.count() == 1

    replication = run_trigger(spec=spec, user=researcher, force=True)
    assert replication.created and replication.run.pk != first.pk and replication.run.forced
    second = finished(replication.run)
    assert second.status == RunStatus.SUCCEEDED
    assert sent == [second.pk]
    # Same spec, same seed: the replication reproduces every number.
    assert second.metrics == first.metrics
    assert second.spec_hash == first.spec_hash


def test_killed_worker_run_completes_once_on_a_new_worker(start_worker, hypothesis, researcher):
    worker = start_worker()
    run = run_trigger(spec=smoke_spec(hypothesis, researcher, steps=20, delay_seconds=0.25), user=researcher).run
    wait_for(lambda: status_of(run) == "running" and run.progress >= 0.2, timeout=60, what="the run to get going")
    worker.kill()

    start_worker()  # its reaper finds the silent run and queues it again
    run = finished(run, timeout=90)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.metrics["sum_of_steps"] == sum(range(1, 21))
    assert "Attempt 1 lost" not in run.error  # the error of the lost attempt is cleared on success
    assert ExperimentRun.objects.count() == 1


def test_killed_worker_without_restart_is_reaped_as_failed(start_worker, hypothesis, researcher, settings):
    settings.RUN_MAX_ATTEMPTS = 1
    worker = start_worker()
    run = run_trigger(spec=smoke_spec(hypothesis, researcher, steps=50, delay_seconds=0.2), user=researcher).run
    wait_for(lambda: status_of(run) == "running", timeout=60, what="the run to start")
    worker.kill()
    time.sleep(settings.RUN_STALE_AFTER_SECONDS + 0.5)
    call_command("reap_runs")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "stopped sending heartbeats" in run.error and "giving up" in run.error


def test_cancel_running_run_is_cancelled_within_five_seconds(start_worker, hypothesis, researcher):
    start_worker()
    run = run_trigger(spec=smoke_spec(hypothesis, researcher, steps=200, delay_seconds=0.1), user=researcher).run
    wait_for(lambda: status_of(run) == "running", timeout=60, what="the run to start")
    asked = time.monotonic()
    run_cancel(run=run, user=researcher)
    wait_for(lambda: status_of(run) == "cancelled", timeout=5, what="cancellation")
    assert time.monotonic() - asked < 5
    assert run.progress < 1.0


def test_a_running_run_reports_an_estimated_finish_and_its_log(start_worker, hypothesis, researcher):
    start_worker()
    run = run_trigger(spec=smoke_spec(hypothesis, researcher, steps=100, delay_seconds=0.1), user=researcher).run
    wait_for(lambda: status_of(run) == "running" and run.estimated_finish_at is not None, timeout=60, what="an ETA")
    left = (run.estimated_finish_at - run.heartbeat_at).total_seconds()
    assert 0 < left < 20, left  # 100 steps of 0.1 s: about 10 s in all
    assert run.log and run.log[0]["message"].startswith("step ")
    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED and run.estimated_finish_at is None


def test_a_run_cancelled_after_some_parts_keeps_them_marked_partial(start_worker, hypothesis, researcher):
    start_worker()
    spec = smoke_spec(hypothesis, researcher, steps=200, delay_seconds=0.05, parts=10)
    run = run_trigger(spec=spec, user=researcher).run
    wait_for(lambda: status_of(run) == "running" and len(run.parts) >= 2, timeout=60, what="two parts")
    run_cancel(run=run, user=researcher)
    run = finished(run)
    assert run.status == RunStatus.CANCELLED and run.partial
    done = [part["key"] for part in run.parts]
    assert done[:2] == ["P1", "P2"] and len(done) < 10
    assert run.metrics["P1_sum"] == sum(range(1, 21)) and "P10_sum" not in run.metrics
    assert run.findings[0] == "part 1: Counted steps 1 to 20; their sum is 210."
    assert run.verdict == ""


def test_a_run_killed_by_its_time_limit_keeps_the_parts_it_finished(start_worker, hypothesis, researcher):
    start_worker()
    spec = smoke_spec(hypothesis, researcher, steps=100, delay_seconds=0.1, parts=10, time_limit_seconds=4)
    run = finished(run_trigger(spec=spec, user=researcher).run)
    assert run.status == RunStatus.FAILED and "hard time limit" in run.error
    assert run.partial and run.metrics["P1_steps"] == 10 and run.findings


def test_cancelled_queued_run_never_starts(start_worker, hypothesis, researcher):
    run = run_trigger(spec=smoke_spec(hypothesis, researcher, steps=2), user=researcher).run
    run_cancel(run=run, user=researcher)  # before any worker exists
    worker = start_worker()
    wait_for(lambda: "experiments.execute_run" in worker.log() and "succeeded" in worker.log(), timeout=30,
             what="the worker to consume the message")  # fmt: skip
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.attempts == 0 and run.started_at is None


def test_hard_time_limit_fails_the_run_with_that_reason(start_worker, hypothesis, researcher):
    start_worker()
    spec = smoke_spec(hypothesis, researcher, steps=100, delay_seconds=0.2, time_limit_seconds=2)
    run = finished(run_trigger(spec=spec, user=researcher).run)
    assert run.status == RunStatus.FAILED
    assert "hard time limit of 2 s" in run.error


def test_task_sent_inside_rolled_back_transaction_never_runs(start_worker, hypothesis, researcher):
    worker = start_worker()
    spec = smoke_spec(hypothesis, researcher, steps=1)
    with pytest.raises(RuntimeError), transaction.atomic():
        doomed = run_trigger(spec=spec, user=researcher).run
        raise RuntimeError("roll back")
    assert not ExperimentRun.objects.filter(pk=doomed.pk).exists()
    later = finished(run_trigger(spec=spec, user=researcher).run)  # proves the worker is consuming
    assert later.status == RunStatus.SUCCEEDED
    assert worker.log().count("experiments.execute_run[") == worker.log().count(f"[{later.task_id}]")
    assert doomed.task_id not in worker.log()


def test_kind_that_always_kills_its_worker_fails_after_the_attempt_limit(start_worker, hypothesis, researcher):
    # A slow reaper, so it is the worker's own view of its dead child that decides.
    worker = start_worker(RUN_STALE_AFTER_SECONDS="60")
    run = run_trigger(spec=smoke_spec(hypothesis, researcher, steps=3, exit_at_step=2), user=researcher).run
    run = finished(run, timeout=120)
    assert run.status == RunStatus.FAILED
    assert run.attempts == run.max_attempts == 3
    assert "worker process died" in run.error and "giving up" in run.error
    assert worker.process.poll() is None  # the worker itself survived its children


def test_a_worker_records_the_queues_it_consumes_and_removes_them_when_it_stops(start_worker, hypothesis, researcher):
    gpu_run = ExperimentRunFactory(spec=smoke_spec(hypothesis, researcher), queue="gpu", sent_at=None)
    assert run_waiting_for(gpu_run).startswith("Waiting for a GPU worker")
    worker = start_worker(queues="cpu")
    wait_for(lambda: live_queues() == {"cpu"}, timeout=30, what="the worker to record its queue")
    assert run_waiting_for(gpu_run).startswith("Waiting for a GPU worker")  # a CPU worker does not take it
    gpu_worker = start_worker(queues="gpu")
    wait_for(lambda: live_queues() == {"cpu", "gpu"}, timeout=30, what="the GPU worker to record its queue")
    assert run_waiting_for(ExperimentRun.objects.get(pk=gpu_run.pk)) is None  # queued, running or done: not stuck
    gpu_worker.stop()
    worker.stop()
    assert not WorkerQueue.objects.exists()  # a clean shutdown removes the records at once
