"""Rate limits on anonymous reads and on writes: a 429 with Retry-After."""

from __future__ import annotations

import pytest

from api.throttles import AnonReadThrottle, WriteThrottle
from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_anonymous_reads_are_throttled(anon_client, monkeypatch):
    monkeypatch.setattr(AnonReadThrottle, "rate", "2/min")
    assert anon_client.get("/api/tags/").status_code == 200
    assert anon_client.get("/api/ideas/").status_code == 200
    response = anon_client.get("/api/tags/")
    body = assert_error(response, 429, code="throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in body["detail"].lower()


def test_signed_in_reads_are_not_throttled_as_anonymous(user, monkeypatch):
    monkeypatch.setattr(AnonReadThrottle, "rate", "1/min")
    client = client_for(user)
    assert [client.get("/api/tags/").status_code for _ in range(3)] == [200, 200, 200]


def test_writes_are_throttled_per_user(user, staff, idea, monkeypatch):
    monkeypatch.setattr(WriteThrottle, "rate", "2/min")
    client = client_for(user)
    assert client.post(f"/api/ideas/{idea.pk}/vote/").status_code == 200
    assert client.delete(f"/api/ideas/{idea.pk}/vote/").status_code == 200
    response = client.post(f"/api/ideas/{idea.pk}/vote/")
    assert_error(response, 429, code="throttled")
    assert int(response["Retry-After"]) > 0
    assert client.get(f"/api/ideas/{idea.pk}/").status_code == 200  # reads do not count as writes
    assert client_for(staff).post(f"/api/ideas/{idea.pk}/vote/").status_code == 200  # another user's own budget


def test_token_endpoint_is_throttled_against_guessing(anon_client, user, monkeypatch):
    monkeypatch.setattr(WriteThrottle, "rate", "3/min")
    codes = [
        anon_client.post(
            "/api/auth/token/", {"username": user.username, "password": "guess"}, format="json"
        ).status_code
        for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]


def test_rates_come_from_the_environment(settings):
    from rest_framework.settings import api_settings

    assert set(api_settings.DEFAULT_THROTTLE_RATES) == {"anon", "write", "trigger"}
    assert AnonReadThrottle().get_rate() == api_settings.DEFAULT_THROTTLE_RATES["anon"]
