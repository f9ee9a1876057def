"""/metrics: Prometheus text whose values match the database, guarded by a token or the client's address."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connections
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from experiments.models import RunStatus, WorkerPresence
from experiments.services.workers import WorkerDetails, worker_queues_record
from tests.factories import ExperimentRunFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_runs_by_state_match_the_rows(client):
    first = ExperimentRunFactory(status=RunStatus.QUEUED)
    for status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED):
        ExperimentRunFactory(spec=first.spec, status=status)
    samples = scrape(client)
    assert value(samples, "ideas_runs", status="queued") == 2
    assert value(samples, "ideas_runs", status="running") == 1
    assert value(samples, "ideas_runs", status="failed") == 1
    assert value(samples, "ideas_runs", status="succeeded") == 0
    assert value(samples, "ideas_database_up") == 1


def test_queue_depths_from_the_broker_and_the_database(client):
    old = timezone.now() - timedelta(minutes=5)
    run = ExperimentRunFactory(queue="metrics-test")
    ExperimentRunFactory(spec=run.spec, queue="metrics-test")
    type(run).objects.filter(pk=run.pk).update(created_at=old)
    before = scrape(client)
    for _ in range(3):
        app.send_task("experiments.ping", queue="metrics-test")
    samples = scrape(client)
    assert value(samples, "ideas_broker_up") == 1
    assert value(samples, "ideas_queue_messages", queue="metrics-test") == 3 + (
        value(before, "ideas_queue_messages", queue="metrics-test") or 0
    )
    assert value(samples, "ideas_queue_queued_runs", queue="metrics-test") == 2
    assert value(samples, "ideas_queue_queued_runs", queue="gpu") == 0
    assert value(samples, "ideas_queue_oldest_queued_age_seconds", queue="metrics-test") >= 5 * 60
    assert value(samples, "ideas_queue_consumers", queue="metrics-test") == 0
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("metrics-test")


def test_a_broker_that_is_down_leaves_out_its_depths_and_says_so(client, broker_down):
    ExperimentRunFactory(queue="gpu")
    samples = scrape(client)
    assert value(samples, "ideas_broker_up") == 0
    assert value(samples, "ideas_queue_messages", queue="gpu") is None
    assert value(samples, "ideas_queue_queued_runs", queue="gpu") == 1


def test_run_durations_by_kind_are_a_histogram_of_finished_runs(client):
    now = timezone.now()
    first = ExperimentRunFactory(status=RunStatus.SUCCEEDED, started_at=now - timedelta(seconds=3), finished_at=now)
    ExperimentRunFactory(
        spec=first.spec, status=RunStatus.SUCCEEDED, started_at=now - timedelta(seconds=100), finished_at=now
    )
    ExperimentRunFactory(spec=first.spec, status=RunStatus.FAILED, started_at=now - timedelta(hours=2), finished_at=now)
    ExperimentRunFactory(spec=first.spec, status=RunStatus.RUNNING, started_at=now - timedelta(seconds=5))
    samples = scrape(client)
    kind = first.kind
    ok = {"kind": kind, "status": "succeeded"}
    assert value(samples, "ideas_run_duration_seconds_count", **ok) == 2
    assert value(samples, "ideas_run_duration_seconds_sum", **ok) == pytest.approx(103)
    assert value(samples, "ideas_run_duration_seconds_bucket", le="1.0", **ok) == 0
    assert value(samples, "ideas_run_duration_seconds_bucket", le="5.0", **ok) == 1
    assert value(samples, "ideas_run_duration_seconds_bucket", le="300.0", **ok) == 2
    assert value(samples, "ideas_run_duration_seconds_bucket", le="+Inf", **ok) == 2
    failed = {"kind": kind, "status": "failed"}
    assert value(samples, "ideas_run_duration_seconds_bucket", le="3600.0", **failed) == 0
    assert value(samples, "ideas_run_duration_seconds_bucket", le="10800.0", **failed) == 1
    assert value(samples, "ideas_run_duration_seconds_count", kind=kind, status="running") is None


def test_worker_heartbeats_from_their_presence_records(client):
    details = WorkerDetails(host="gpu-box", pid=4242, pool_pids=[4243], concurrency=2, torch_threads=8)
    worker_queues_record(worker="celery@gpu-box", queues=["gpu"], details=details)
    ExperimentRunFactory(status=RunStatus.RUNNING, worker="gpu-box:4243", queue="gpu")
    samples = scrape(client)
    seen_at = WorkerPresence.objects.get(worker="celery@gpu-box").seen_at.timestamp()
    assert value(samples, "ideas_worker_last_heartbeat_timestamp_seconds", worker="celery@gpu-box") == seen_at
    assert value(samples, "ideas_worker_concurrency", worker="celery@gpu-box") == 2
    assert value(samples, "ideas_worker_torch_threads", worker="celery@gpu-box") == 8
    assert value(samples, "ideas_worker_running_runs", worker="celery@gpu-box") == 1
    assert value(samples, "ideas_queue_consumers", queue="gpu") == 1


def test_request_latency_is_labelled_by_route_name_not_path(client, idea):
    def count(samples, view, status="200"):
        return value(samples, "ideas_http_request_duration_seconds_count", view=view, method="GET", status=status) or 0

    before = scrape(client)
    client.get(idea.get_absolute_url())
    client.get("/no/such/page/")
    client.get("/healthz")
    samples = scrape(client)
    assert count(samples, "idea-detail") == count(before, "idea-detail") + 1
    assert count(samples, "unmatched", "404") == count(before, "unmatched", "404") + 1
    assert count(samples, "healthz") == count(before, "healthz") + 1
    views = {dict(labels).get("view", "") for _, labels in samples}
    assert not any(view.startswith("/") for view in views)  # names, never the paths asked for


def test_a_database_that_is_down_still_gives_the_request_metrics(client, monkeypatch):
    def refuse(self):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(type(connections["default"]), "ensure_connection", refuse)
    samples = scrape(client)
    assert value(samples, "ideas_database_up") == 0
    assert value(samples, "ideas_runs", status="queued") is None
    assert any(name == "ideas_http_request_duration_seconds_count" for name, _ in samples)


# --- who may read them ---


def test_only_loopback_by_default(client, settings):
    assert client.get("/metrics").status_code == 200  # the test client calls from 127.0.0.1
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403 and b"METRICS_ALLOWED_IPS" in response.content
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.1"]
    assert client.get("/metrics", REMOTE_ADDR="10.4.5.6").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_request_through_a_proxy_needs_the_token(client):
    response = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 403 and b"proxy" in response.content


def test_with_a_token_only_the_bearer_of_it_reads_them(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 403  # loopback is not enough any more
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token s3cret-token").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="203.0.113.9")
    assert ok.status_code == 200 and b"ideas_runs" in ok.content


def test_metrics_are_not_refused_by_the_host_check(client, settings):
    settings.ALLOWED_HOSTS = ["ideas.example.org"]
    assert client.get("/metrics", HTTP_HOST="10.1.2.3:8000").status_code == 200


# --- several web processes ---

OBSERVE = """
import django, sys
django.setup()
from django.test import Client
response = Client().get(sys.argv[1])
sys.stdout.write(response.content.decode())
"""


def test_multiprocess_mode_sums_the_request_counts_of_every_process(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",  # empty: the run metrics say the database is down
    }

    def run(path: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", OBSERVE, path], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    run("/healthz")
    run("/healthz")
    text = run("/metrics")  # a third process, which answered no /healthz itself
    counts = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ideas_http_request_duration_seconds_count" and sample.labels.get("view") == "healthz"
    ]
    assert counts == [2.0]


def test_gunicorn_empties_the_multiprocess_folder_when_it_starts(tmp_path, monkeypatch):
    from config import gunicorn

    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "histogram_1234.db").write_bytes(b"old counts")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    gunicorn.on_starting(server=None)
    assert folder.is_dir() and list(folder.iterdir()) == []
