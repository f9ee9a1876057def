"""Prometheus metrics at /metrics: request latency here, runs, queues and workers from experiments/metrics.py.

Request latency is a histogram observed by `RequestMetricsMiddleware` in each web process, labelled by the
route's name (`idea-list`, `api:run-detail`...; the route pattern when it has no name; `unmatched` for a 404),
the method and the status, never the raw path, so the number of series stays bounded. Runs, queues and
worker heartbeats are read from the database and the broker when Prometheus scrapes, so every web process
answers the same numbers.

Several web processes (gunicorn workers) each keep their own request counts. With PROMETHEUS_MULTIPROC_DIR
set in the server's environment (a folder config/gunicorn.py empties when the server starts) each process
writes its counts there and a scrape sums them (prometheus_client's multiprocess mode). Without it, a scrape
sees the one process that answered it.

Access: with METRICS_TOKEN set, only a request with `Authorization: Bearer <token>`; otherwise only clients
whose address is in METRICS_ALLOWED_IPS (addresses or networks; loopback by default). A request that came
through a proxy (it carries X-Forwarded-For, Forwarded or X-Real-IP) is refused on the address rule, since the
address seen is the proxy's: scrape through a proxy with the token. Anything else is a 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

log = logging.getLogger(__name__)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# From a cached page (5 ms) to a slow export (10 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")

REQUEST_LATENCY = Histogram(
    "ideas_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name, method and status.",
    ["view", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=None,  # put into each scrape's registry below (or read from the multiprocess files)
)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def view_label(request: HttpRequest) -> str:
    """The route's name (bounded), never the path (unbounded)."""
    name = getattr(request, "metrics_view", "")
    if name:
        return name
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        REQUEST_LATENCY.labels(view_label(request), method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def _address_allowed(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if client in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            log.warning("METRICS_ALLOWED_IPS: %r is not an address or a network; ignored", allowed)
    return False


def metrics_refusal(request: HttpRequest) -> str | None:
    """Why this request may not read the metrics, or None when it may."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        return "The metrics need 'Authorization: Bearer <METRICS_TOKEN>'."
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return "The metrics are not served through a proxy without METRICS_TOKEN."
    if not _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return "The metrics are open only to the addresses in METRICS_ALLOWED_IPS."
    return None


def scrape_registry() -> CollectorRegistry:
    """This scrape's collectors: request latency (this process's, or every process's) plus the database's view."""
    from experiments.metrics import RunsCollector

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_LATENCY)
        ProcessCollector(registry=registry)
    registry.register(RunsCollector())
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal:
        return HttpResponse(refusal + "\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
