"""REDIS_CACHE_URL: throttle counts live in Redis, shared by processes; a Redis that is down lets requests through."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.core.cache import caches

from api import throttles
from api.throttles import AnonReadThrottle
from tests.experiments.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/5"  # helper E's own database on the shared Redis


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_cache(location: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


ANOTHER_PROCESS = """
import django, sys
django.setup()
from django.core.cache import cache
from django.test import Client
print(len(cache.get("throttle_anon_127.0.0.1", [])))
print(Client().get("/api/tags/").status_code)
"""


@pytest.mark.skipif(not redis_answers(), reason=f"needs Redis at {REDIS_URL}")
def test_a_throttle_count_is_shared_by_another_process(transactional_db, anon_client, settings, monkeypatch):
    settings.CACHES = redis_cache(REDIS_URL)
    caches["default"].delete("throttle_anon_127.0.0.1")
    monkeypatch.setattr(AnonReadThrottle, "rate", "2/min")
    assert [anon_client.get("/api/tags/").status_code for _ in range(2)] == [200, 200]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "REDIS_CACHE_URL": REDIS_URL,
        "API_THROTTLE_ANON": "2/min",
        "DATABASE_URL": database_url(),
    }
    result = subprocess.run(
        [sys.executable, "-c", ANOTHER_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen, status = result.stdout.split()
    assert seen == "2"  # a fresh connection in another process sees this process's two requests
    assert status == "429"  # and its own request is the third of the minute
    caches["default"].delete("throttle_anon_127.0.0.1")


def test_a_redis_that_is_down_lets_requests_through_with_a_warning(db, anon_client, settings, monkeypatch, caplog):
    settings.CACHES = redis_cache("redis://127.0.0.1:1/5")  # nothing listens on port 1
    monkeypatch.setattr(AnonReadThrottle, "rate", "1/min")
    monkeypatch.setitem(throttles._last_warning, "at", float("-inf"))
    caplog.set_level(logging.WARNING)
    assert [anon_client.get("/api/tags/").status_code for _ in range(3)] == [200, 200, 200]
    warnings = [r.getMessage() for r in caplog.records if r.name == "api.throttles"]
    assert len(warnings) == 1 and "not rate-limited" in warnings[0]  # once, not once a request


def test_redis_cache_url_selects_django_s_redis_cache():
    code = "import config.settings as s; print(s.CACHES['default']['BACKEND'], s.CACHES['default'].get('LOCATION', ''))"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_CACHE_URL"}

    def backend(**extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.strip()

    assert backend() == "django.core.cache.backends.locmem.LocMemCache"
    assert backend(REDIS_CACHE_URL=REDIS_URL) == f"django.core.cache.backends.redis.RedisCache {REDIS_URL}"
