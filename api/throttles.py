"""Rate limits: anonymous callers (reads, and the token endpoint), writes by anyone, run triggers.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from the
environment (API_THROTTLE_ANON, API_THROTTLE_WRITE, API_THROTTLE_TRIGGER; e.g.
"200/min"). Counts live in Django's cache, so they are per process with the
default local-memory cache.
A refused call is a 429 with Retry-After.
"""

from __future__ import annotations

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle


class AnonReadThrottle(AnonRateThrottle):
    """Anonymous callers, by IP address."""

    scope = "anon"
    rate: str | None = None  # None: read from the settings; a test may set "2/min"


class WriteThrottle(SimpleRateThrottle):
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


class TriggerThrottle(SimpleRateThrottle):
    """Triggering runs, by user: each trigger may queue work on the workers, so it has a budget of its own.

    Only signed-in users trigger (the permission check answers anonymous callers first).
    """

    scope = "trigger"
    rate: str | None = None  # None: read from the settings; a test may set "2/min"

    def get_cache_key(self, request, view) -> str | None:
        if request.method != "POST" or not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"user-{request.user.pk}"}
