"""A database that cannot be reached: 503 with Retry-After (JSON under /api/, a plain page elsewhere), never a 500."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from tests.factories import IdeaFactory

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def database_down(db):
    """Every query of this thread fails the way a stopped server makes it fail (until the test ends)."""

    def refuse():
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    idea = IdeaFactory()
    connection.ensure_connection = refuse
    yield idea
    del connection.ensure_connection  # the class's own method again


def _no_error_logged(caplog) -> None:
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any("database unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("path", ["/api/ideas/", "/api/ideas/{pk}/", "/api/runs/", "/api/experiments/"])
def test_the_api_answers_503_with_retry_after_while_the_database_is_down(database_down, caplog, path):
    caplog.set_level(logging.INFO)
    response = APIClient().get(path.format(pk=database_down.pk))
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "30"
    assert response.json()["code"] == "database_unavailable"
    _no_error_logged(caplog)


def test_an_api_write_answers_503_too(database_down, caplog):
    caplog.set_level(logging.INFO)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.post(f"/api/ideas/{database_down.pk}/vote/")
    assert response.status_code == 503 and response.json()["code"] == "database_unavailable"
    _no_error_logged(caplog)


@pytest.mark.parametrize("path", ["/ideas/", "/ideas/{pk}/", "/runs/", "/datasets/"])
def test_pages_answer_a_plain_503_page_while_the_database_is_down(database_down, client, caplog, path):
    caplog.set_level(logging.INFO)
    response = client.get(path.format(pk=database_down.pk), follow=False)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert b"Back in a moment" in response.content
    _no_error_logged(caplog)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_server_whose_database_refuses_connections_answers_503_not_500():
    """The real thing: gunicorn pointed at a PostgreSQL port where nothing listens."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DATABASE_URL=f"postgres://nobody@127.0.0.1:{_free_port()}/ideas",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="test-" + "k" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_COOKIES="0",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        answers = {}
        deadline = time.monotonic() + 120
        for path in ("/api/ideas/", "/ideas/"):
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
                except urllib.error.HTTPError as error:
                    answers[path] = (error.code, error.headers.get("Retry-After"), error.read().decode())
                    break
                except OSError:  # not listening yet
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.3)
                else:
                    pytest.fail(f"{path} answered 200 without a database")
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert answers["/api/ideas/"][:2] == (503, "30") and '"database_unavailable"' in answers["/api/ideas/"][2]
    assert answers["/ideas/"][:2] == (503, "30") and "Back in a moment" in answers["/ideas/"][2]
    assert "Traceback" not in output and "Internal Server Error" not in output and "Error handling" not in output
