"""Broker outages with a real Redis of the test's own: it is stopped and restarted without persistence.

A run triggered while the broker is down, or whose message a restart lost, is sent
again by the reaper once the broker is back, and still runs once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.broker import waiting_task_ids
from experiments.models import ExperimentRun, RunStatus
from experiments.services import run_trigger, runs_reap
from tests.experiments.conftest import wait_for
from tests.factories import smoke_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


class PrivateRedis:
    """redis-server on a free port, no persistence: a restart loses every message, as in the review."""

    def __init__(self, folder) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=30, what="redis-server to start")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis(tmp_path, monkeypatch):
    """A private Redis that this test process sends to; the session's broker is restored afterwards."""
    from config.celery import app

    server = PrivateRedis(tmp_path).start()
    before = app.conf.broker_url, app.conf.broker_transport_options

    def use(url, options):
        # Celery reads CELERY_BROKER_URL from the environment before its configuration (CI sets it).
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        app.conf.broker_url, app.conf.broker_transport_options = url, options
        app._pool = app.amqp._producer_pool = None  # the pools were built for the previous broker

    use(server.url, {"visibility_timeout": 3600})
    yield server
    use(*before)
    server.stop()


@pytest.fixture
def spec(hypothesis, researcher):
    return smoke_spec(hypothesis, researcher, seed=3, steps=2)


def test_the_reaper_reads_the_broker_queue_and_resends_only_lost_messages(redis, spec, researcher, settings):
    run = run_trigger(spec=spec, user=researcher).run  # no worker: the message waits in Redis
    assert waiting_task_ids(["cpu"]) == {run.task_id}
    settled = timezone.now() - timedelta(seconds=settings.RUN_RESEND_GRACE_SECONDS + 1)
    ExperimentRun.objects.filter(pk=run.pk).update(sent_at=settled)
    assert runs_reap().resent == []  # waiting its turn is not lost

    redis.stop()
    assert runs_reap().resent == []  # nothing can be sent while the broker is down; no error either
    redis.start()  # without persistence: the message is gone
    assert waiting_task_ids(["cpu"]) == set()
    assert runs_reap().resent == [run.pk]
    assert waiting_task_ids(["cpu"]) == {run.task_id}  # exactly one message again
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.sent_at > settled


def test_a_run_triggered_while_the_broker_is_down_runs_once_soon_after_it_is_back(
    redis, spec, researcher, start_worker
):
    # The production reaper timing (every 10 s, a 10 s grace), so the wait measured is the one users get.
    worker = start_worker(CELERY_BROKER_URL=redis.url, RUN_REAP_INTERVAL_SECONDS="10", RUN_RESEND_GRACE_SECONDS="10")
    redis.stop()
    run = run_trigger(spec=spec, user=researcher).run  # answered at once; the send fails after commit
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.sent_at is None
    time.sleep(5)

    redis.start()
    # The aim: it starts within 30 s of the broker being back (5 s more for a 2-step run on a busy machine).
    done = wait_for(lambda: ExperimentRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, timeout=35,
                    what="the run to succeed after the broker came back")  # fmt: skip
    assert done
    run.refresh_from_db()
    assert run.attempts == 1 and run.metrics["steps_completed"] == 2
    assert worker.log().count(f"[{run.task_id}] succeeded") == 1
