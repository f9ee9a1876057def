"""Rate limits: anonymous callers (reads, and the token endpoint), writes by anyone, run triggers.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from the
environment (API_THROTTLE_ANON, API_THROTTLE_WRITE, API_THROTTLE_TRIGGER; e.g.
"200/min"). Counts live in Django's cache: per process with the default local-memory
cache, shared by every web process and machine with REDIS_CACHE_URL set.
A refused call is a 429 with Retry-After.

When the cache cannot be reached (Redis down), the throttles let the request through
and log a warning (at most once a minute per process): an outage of the cache should
not turn every API call into a 500, and the database behind the API stays the limit.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

log = logging.getLogger(__name__)

CACHE_ERRORS = (RedisError, OSError)
WARN_EVERY_SECONDS = 60.0
_last_warning = {"at": float("-inf")}


class FailOpenMixin:
    """A throttle whose cache cannot be reached allows the request (see the module docstring)."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as exc:
            now = time.monotonic()
            if now - _last_warning["at"] >= WARN_EVERY_SECONDS:
                _last_warning["at"] = now
                log.warning("throttles: the cache is unreachable (%s); requests are not rate-limited", exc)
            return True


class AnonReadThrottle(FailOpenMixin, AnonRateThrottle):
    """Anonymous callers, by IP address."""

    scope = "anon"
    rate: str | None = None  # None: read from the settings; a test may set "2/min"


class WriteThrottle(FailOpenMixin, SimpleRateThrottle):
    """POST, PATCH, PUT and DELETE, by user (or by IP address when anonymous)."""

    scope = "write"
    rate: str | None = None  # None: read from the settings; a test may set "2/min"

    def get_cache_key(self, request, view) -> str | None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None  # reads are not counted here
        if request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TriggerThrottle(FailOpenMixin, SimpleRateThrottle):
    """Triggering runs, by user: each trigger may queue work on the workers, so it has a budget of its own.

    Only signed-in users trigger (the permission check answers anonymous callers first).
    """

    scope = "trigger"
    rate: str | None = None  # None: read from the settings; a test may set "2/min"

    def get_cache_key(self, request, view) -> str | None:
        if request.method != "POST" or not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"user-{request.user.pk}"}
