"""/healthz and /readyz: answered before host checks and throttles; /readyz names the database or broker that failed."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections

from config import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok" and response["Content-Type"].startswith("text/plain")


def test_probes_are_not_refused_by_the_host_check_or_sent_to_https(client, settings):
    settings.ALLOWED_HOSTS = ["ideas.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/ideas/", HTTP_HOST="10.1.2.3:8000").status_code == 400  # other pages still are


def test_readyz_is_ready_when_the_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "failed": [], "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_answers_503_naming_the_broker_when_it_is_down(client, broker_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failed"] == ["broker"]
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"].startswith("unreachable")
    assert response["Retry-After"] == "10"


def test_readyz_answers_503_naming_the_database_when_it_refuses(client, monkeypatch):
    def refuse(self):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    # On the class: the check runs on a probe thread, with a connection of its own.
    monkeypatch.setattr(type(connections["default"]), "ensure_connection", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert response.json()["checks"]["database"] == "unreachable (OperationalError)"


def test_readyz_answers_503_when_the_database_does_not_answer_in_time(client, monkeypatch, settings):
    settings.READYZ_TIMEOUT_SECONDS = 0.2

    def hang(self):
        time.sleep(1)
        raise OperationalError("timed out")

    monkeypatch.setattr(type(connections["default"]), "ensure_connection", hang)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "no answer within 0.2 s"


def test_both_failing_are_both_named(client, monkeypatch, broker_down):
    def refuse(self):
        raise OperationalError("refused")

    monkeypatch.setattr(type(connections["default"]), "ensure_connection", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["broker", "database"]


def _finishes(call) -> BaseException | None:
    """What `call` raised, run on a thread; fails the test if it is still blocked after 20 s."""
    outcome: list[BaseException | None] = []

    def target():
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    assert outcome, "still blocked on a broker that never answers"
    return outcome[0]


@pytest.mark.parametrize("read", ["broker_check", "queue_lengths", "waiting_task_ids"])
def test_broker_reads_give_up_on_a_broker_that_accepts_but_never_answers(broker_silent, settings, monkeypatch, read):
    """A Redis that is wedged (or a firewall that swallows packets) must not block /readyz, /metrics or the reaper."""
    from experiments import broker
    from experiments.broker import BrokerUnavailable, queue_lengths, waiting_task_ids

    settings.READYZ_TIMEOUT_SECONDS = 0.5
    monkeypatch.setattr(broker, "READ_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(broker, "INVENTORY_READ_TIMEOUT_SECONDS", 0.5)
    calls = {
        "broker_check": health.broker_check,
        "queue_lengths": lambda: queue_lengths(["cpu"]),
        "waiting_task_ids": lambda: waiting_task_ids(["cpu"]),
    }
    raised = _finishes(calls[read])
    assert raised is not None
    if read != "broker_check":
        assert isinstance(raised, BrokerUnavailable)
