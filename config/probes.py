"""Probes and the metrics scrape answered before the rest of the middleware.

/healthz, /readyz and /metrics are called by load balancers, orchestrators and Prometheus, often by the
machine's IP address (not a name in DJANGO_ALLOWED_HOSTS), over plain HTTP behind a proxy that terminates
TLS (so DJANGO_SECURE_SSL_REDIRECT would send them away), and many times a minute (no session, no
throttle). This middleware sits before SecurityMiddleware and CommonMiddleware and calls their views
directly; the same views are routed in config/urls.py, so `reverse("healthz")` and friends work.
/metrics guards itself (config/metrics.py: a token or an allowed address).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from config import health, metrics

PROBES: dict[str, tuple[str, Callable[[HttpRequest], HttpResponse]]] = {
    "/healthz": ("healthz", health.healthz),
    "/readyz": ("readyz", health.readyz),
    "/metrics": ("metrics", metrics.metrics_view),
}


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        name, view = probe
        request.metrics_view = name  # the latency histogram's label (no URL resolution happened)
        return view(request)
