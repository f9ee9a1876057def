"""Real Celery worker processes for the run-lifecycle tests.

Each worker is `celery -A config worker` in its own process group, pointed at the
test database (a file on SQLite, the test database on PostgreSQL) and at the
session's broker (Redis when CELERY_BROKER_URL names it, as in CI; else a
filesystem broker in a temporary folder).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from ideas.models import IdeaKind
from tests.factories import IdeaFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "cpu,gpu") -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = log_path
        self.env = env
        self.queues = queues
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Worker:
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queues, "-c", "1", "-P", "prefork"]
        cmd += ["-n", self.name, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """kill -9 the whole worker: main process and its pool children."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def lifecycle_settings(settings, tmp_path):
    """Fast heartbeats and reaping, shared by this test process and its workers."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.RUN_HEARTBEAT_SECONDS = 0.3
    settings.RUN_STALE_AFTER_SECONDS = 3
    settings.RUN_REAP_INTERVAL_SECONDS = 1
    settings.RUN_MAX_ATTEMPTS = 3
    return settings


@pytest.fixture
def start_worker(transactional_db, lifecycle_settings, celery_broker, tmp_path):
    """start_worker(queues="cpu,gpu", **env) -> a ready Worker; every worker is stopped at the end of the test."""
    workers: list[Worker] = []

    def start(queues: str = "cpu,gpu", **extra_env: str) -> Worker:
        env = {
            **os.environ,
            **celery_broker,
            "DATABASE_URL": database_url(),
            "ARTIFACT_ROOT": str(lifecycle_settings.ARTIFACT_ROOT),
            "RUN_HEARTBEAT_SECONDS": str(lifecycle_settings.RUN_HEARTBEAT_SECONDS),
            "RUN_STALE_AFTER_SECONDS": str(lifecycle_settings.RUN_STALE_AFTER_SECONDS),
            "RUN_REAP_INTERVAL_SECONDS": str(lifecycle_settings.RUN_REAP_INTERVAL_SECONDS),
            "SMOKE_ALLOW_EXIT": "1",
            **extra_env,
        }
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log", queues)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def researcher(transactional_db):
    return UserFactory(username="researcher")


@pytest.fixture
def hypothesis(transactional_db, researcher):
    return IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=researcher, imported_votes=1)


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
