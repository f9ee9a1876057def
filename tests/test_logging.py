"""Where log lines go: a worker started like `make run`'s writes to its --logfile, and Django's lines print once."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent


def _stream_handlers(logger: logging.Logger) -> list[logging.StreamHandler]:
    """The plain StreamHandlers a record of `logger` passes through (pytest's capture handlers left out)."""
    found = []
    while logger is not None:
        found += [handler for handler in logger.handlers if type(handler) is logging.StreamHandler]
        logger = logger.parent if logger.propagate else None
    return found


@pytest.mark.django_db
def test_a_bad_request_is_logged_once(client, settings):
    settings.DEBUG = True  # Django's own "django" console handler only prints with debug on, as under runserver
    printed = io.StringIO()
    handlers = _stream_handlers(logging.getLogger("django.request"))
    streams = [handler.setStream(printed) for handler in handlers]
    try:
        assert client.get("/api/ideas/", {"kind": "nope"}).status_code == 400
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)
    assert printed.getvalue().count("Bad Request: /api/ideas/") == 1, printed.getvalue()


@pytest.mark.slow
def test_the_worker_writes_its_lines_to_its_log_file(tmp_path, monkeypatch):
    """`celery worker --logfile` as in the Makefile: the ready line and a task's lines land in the file, not on the
    terminal."""
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")  # Celery prefers it to the sender's own broker (CI)
    broker = tmp_path / "broker"
    log_file = tmp_path / "worker.log"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_FS_BROKER_DIR": str(broker),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "RUN_REAP_INTERVAL_SECONDS": "0",
    }
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "cpu,gpu", "-c", "1", "-l", "info"]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--logfile", str(log_file)]
    terminal = tmp_path / "terminal.txt"
    with terminal.open("wb") as out:
        worker = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        logged = _wait_for_line(log_file, " ready.", worker, terminal)
        sender = Celery(
            broker="filesystem://",
            broker_transport_options={
                "data_folder_in": str(broker),
                "data_folder_out": str(broker),
                "control_folder": str(broker / "control"),
            },
        )
        sender.send_task("experiments.ping", queue="cpu")
        logged = _wait_for_line(log_file, "experiments.ping", worker, terminal, what="succeeded")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=20)
    assert "INFO/MainProcess] Connected to filesystem://" in logged
    assert "INFO/ForkPoolWorker-1] Task experiments.ping[" in logged  # a pool process's line too
    printed = terminal.read_text(errors="replace")
    assert " ready." not in printed and "experiments.ping[" not in printed, printed


def _wait_for_line(path: Path, text: str, worker: subprocess.Popen, terminal: Path, *, what: str = "") -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        logged = path.read_text(errors="replace") if path.exists() else ""
        if any(text in line and what in line for line in logged.splitlines()):
            return logged
        if worker.poll() is not None:
            raise AssertionError(f"worker exited early:\n{terminal.read_text(errors='replace')}\n{logged}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} line in the log file:\n{logged}\nterminal:\n{terminal.read_text()}")
