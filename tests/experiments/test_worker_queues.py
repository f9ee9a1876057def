"""A queued run whose queue no live worker consumes says what it waits for, on its page and in the API.

Workers record the queues they consume (`experiments.services.workers`); these tests write those records
directly. tests/experiments/test_lifecycle.py checks that a real worker process writes and removes them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from experiments.models import RunStatus, WorkerQueue
from experiments.selectors import live_queues, run_waiting_for
from experiments.services.workers import worker_queues_record, worker_queues_remove
from tests.factories import ExperimentRunFactory

pytestmark = pytest.mark.django_db

GPU_WORDS = "Waiting for a GPU worker: no worker is consuming the gpu queue."


@pytest.fixture
def gpu_run():
    return ExperimentRunFactory(queue="gpu")


def api(run) -> dict:
    response = APIClient().get(f"/api/runs/{run.pk}/")
    assert response.status_code == 200
    return response.json()


def test_a_queued_gpu_run_with_no_worker_says_it_waits_for_a_gpu_worker_and_how_to_start_one(client, gpu_run):
    waiting = run_waiting_for(gpu_run)
    assert waiting.startswith(GPU_WORDS) and "make worker QUEUES=gpu" in waiting
    assert api(gpu_run)["waiting_for"] == waiting
    page = client.get(gpu_run.get_absolute_url()).content.decode()
    assert GPU_WORDS in page and 'class="run-waiting js-run-waiting" role="status">' in page
    live = client.get(f"/runs/{gpu_run.pk}/status.json").json()  # what the page polls
    assert live["waiting_for"] == waiting


def test_a_live_worker_on_the_runs_queue_means_it_merely_waits_its_turn(client, gpu_run):
    worker_queues_record(worker="celery@gpu-box", queues=["gpu"])
    assert live_queues() == {"gpu"}
    assert run_waiting_for(gpu_run) is None
    assert api(gpu_run)["waiting_for"] is None
    page = client.get(gpu_run.get_absolute_url()).content.decode()
    assert GPU_WORDS not in page and 'class="run-waiting js-run-waiting" role="status" hidden>' in page


def test_a_worker_on_other_queues_does_not_serve_the_run(gpu_run):
    worker_queues_record(worker="celery@laptop", queues=["cpu"])
    assert run_waiting_for(gpu_run).startswith(GPU_WORDS)
    cpu_run = ExperimentRunFactory(spec=gpu_run.spec, queue="cpu")
    assert run_waiting_for(cpu_run) is None


def test_a_worker_that_stopped_refreshing_its_record_is_gone(gpu_run, settings):
    worker_queues_record(worker="celery@gpu-box", queues=["gpu"])
    seen = timezone.now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS + 5)
    WorkerQueue.objects.update(seen_at=seen)  # killed without a shutdown: its rows are old
    assert live_queues() == set()
    assert run_waiting_for(gpu_run).startswith(GPU_WORDS)
    worker_queues_record(worker="celery@gpu-box", queues=["gpu"])  # it came back
    assert run_waiting_for(gpu_run) is None


def test_a_worker_records_exactly_its_queues_and_removes_them_at_shutdown():
    worker_queues_record(worker="celery@box", queues=["cpu", "gpu"])
    worker_queues_record(worker="celery@box", queues=["gpu", "gpu"])  # restarted with -Q gpu
    worker_queues_record(worker="celery@other", queues=["cpu"])
    rows = sorted(WorkerQueue.objects.values_list("worker", "queue"))
    assert rows == [("celery@box", "gpu"), ("celery@other", "cpu")]
    worker_queues_remove(worker="celery@box")
    assert live_queues() == {"cpu"}


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_only_a_queued_run_waits_for_a_worker(status):
    run = ExperimentRunFactory(queue="gpu", status=status)
    assert run_waiting_for(run) is None
    assert api(run)["waiting_for"] is None


def test_a_cpu_run_with_no_worker_names_its_queue(client):
    run = ExperimentRunFactory(queue="cpu")
    assert run_waiting_for(run).startswith("Waiting for a worker: no worker is consuming the cpu queue.")


def test_the_run_list_asks_for_the_live_queues_once():
    first = ExperimentRunFactory(queue="gpu")
    for _ in range(4):
        ExperimentRunFactory(spec=first.spec, queue="gpu")
    with CaptureQueriesContext(connection) as queries:
        response = APIClient().get("/api/runs/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 5 and all(row["waiting_for"].startswith(GPU_WORDS) for row in results)
    assert sum("experiments_workerqueue" in q["sql"] for q in queries.captured_queries) == 1
