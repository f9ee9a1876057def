"""/healthz and /readyz: answered before host checks and throttles; /readyz names the database or broker that failed."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections

from config import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_check_left_running():
    """A check a test left hanging is waited for, so the next test's probe starts it afresh."""
    yield
    for future in list(health._pending.values()):
        try:
            future.result(timeout=30)
        except Exception:
            pass


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


def test_a_hung_check_is_not_started_again_and_does_not_starve_the_others(monkeypatch, settings):
    """Probes every few seconds against a database that hangs: one thread waits on it, the broker is still asked."""
    settings.READYZ_TIMEOUT_SECONDS = 0.2
    release = threading.Event()
    started = []

    def hang():
        started.append(1)
        release.wait(30)

    monkeypatch.setitem(health.CHECKS, "database", hang)
    monkeypatch.setitem(health.CHECKS, "broker", lambda: None)
    try:
        results = [health.readiness() for _ in range(4)]
    finally:
        release.set()
    assert [result["broker"] for result in results] == ["ok"] * 4
    assert results[0]["database"] == "no answer within 0.2 s"
    assert all("previous check has not returned" in result["database"] for result in results[1:])
    assert len(started) == 1
    health._pending["database"].result(timeout=30)
    assert health.readiness() == {"database": "ok", "broker": "ok"}
    assert len(started) == 2


def test_all_checks_share_one_deadline(monkeypatch, settings):
    """Two slow checks are waited for READYZ_TIMEOUT_SECONDS together, not one after the other."""
    settings.READYZ_TIMEOUT_SECONDS = 1.0
    release = threading.Event()
    monkeypatch.setitem(health.CHECKS, "database", lambda: release.wait(30))
    # Answers after the deadline, but before a second timeout would have run out after the first.
    monkeypatch.setitem(health.CHECKS, "broker", lambda: time.sleep(1.5))
    try:
        result = health.readiness()
    finally:
        release.set()
    assert result == {"database": "no answer within 1 s", "broker": "no answer within 1 s"}
