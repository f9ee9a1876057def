"""A real worker on the staff page "Workers and queues" and in /metrics: its record, and the run it is running."""

from __future__ import annotations

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from experiments.models import ExperimentRun, RunStatus, WorkerPresence
from experiments.services import run_cancel, run_trigger
from tests.experiments.conftest import wait_for
from tests.factories import StaffFactory, smoke_spec


def test_the_staff_page_and_metrics_show_what_a_real_worker_is_running(start_worker, hypothesis, researcher):
    worker = start_worker(queues="cpu")
    presence = wait_for(WorkerPresence.objects.first, timeout=30, what="the worker's presence record")
    # Long enough that a loaded machine cannot let it finish before the page and /metrics are read (10 minutes
    # at most); cancelled as soon as the test has looked, so it costs the suite only those seconds.
    spec = smoke_spec(hypothesis, researcher, steps=3000, delay_seconds=0.2)
    run = run_trigger(spec=spec, user=researcher).run
    try:
        _look_while_it_runs(run, worker, presence)
    finally:
        run_cancel(run=run, user=researcher)
        wait_for(
            lambda: ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.CANCELLED).exists(),
            timeout=60,
            what="the run to stop once cancelled",
        )


def _look_while_it_runs(run, worker, presence) -> None:
    running = wait_for(
        lambda: ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, progress__gt=0).first(),
        timeout=60,
        what="the run to start",
    )
    assert running.worker in presence.identities  # claimed by one of the recorded pool processes

    client = Client()
    client.force_login(StaffFactory())
    page = client.get("/staff/workers/").content.decode()
    row = page.split(f'data-worker="{presence.worker}"')[1].split("</tr>")[0]
    assert f'<a href="/runs/{run.pk}/">Run {run.pk}</a>' in row and "worker-stale-tag" not in row
    assert f'<td class="num">{worker.process.pid}</td>' in row

    text = client.get("/metrics").content.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("ideas_worker_running_runs", (("worker", presence.worker),))] == 1
    assert samples[("ideas_runs", (("status", "running"),))] == 1
    assert samples[("ideas_queue_consumers", (("queue", "cpu"),))] == 1
