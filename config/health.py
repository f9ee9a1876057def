"""/healthz (the process answers) and /readyz (the database and the broker answer), for load balancers and probes.

/healthz touches nothing: a 200 means the web process is up and serving. /readyz asks the database for
`SELECT 1` and the Celery broker for a connection (a PING on Redis), each bounded by READYZ_TIMEOUT_SECONDS,
and answers 503 with a JSON body naming what failed. The checks run on long-lived threads of this
process, so a database that hangs (a network cut, not a refusal) still gets an answer in time. The database
check opens a connection and closes it: readiness includes being able to connect (a server at
max_connections refuses new ones), and no idle connection is left on the probe's thread.

Both are answered before host checks, sessions and throttles (config/probes.py): a probe that calls by the
machine's IP address, over plain HTTP, many times a minute, must still get an answer.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)

# One thread per check is enough: a check is never started while its previous run is pending (readiness).
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_pending: dict[str, Future] = {}
_pending_lock = threading.Lock()


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def database_check() -> None:
    """Raises when the default database does not answer a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


def broker_check() -> None:
    """Raises when the Celery broker cannot be reached (Redis must answer a PING)."""
    from config.celery import app
    from experiments.broker import connect_once, read_options

    timeout = settings.READYZ_TIMEOUT_SECONDS
    with app.connection_for_read(connect_timeout=timeout, transport_options=read_options(timeout)) as conn:
        if conn.transport_cls == "filesystem":
            folder = conn.transport_options.get("data_folder_in", "")
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise OSError(f"the broker folder {folder!r} is missing or not writable")
            return
        connect_once(conn, timeout)
        if conn.transport_cls in ("redis", "rediss"):
            with conn.default_channel.conn_or_acquire() as client:
                client.ping()


CHECKS = {"database": database_check, "broker": broker_check}


def readiness() -> dict[str, str]:
    """{check: "ok" or why it failed}, all checks bounded by one deadline of READYZ_TIMEOUT_SECONDS.

    A check still running from an earlier probe (a database that hangs) is not started again: it keeps its
    one thread, so later probes neither pile up threads nor wait behind it, and it is reported as still not
    answering until it returns.
    """
    timeout = settings.READYZ_TIMEOUT_SECONDS
    futures = {}
    results = {}
    with _pending_lock:
        for name, check in CHECKS.items():
            previous = _pending.get(name)
            if previous is not None and not previous.done():
                results[name] = f"no answer within {timeout:g} s (the previous check has not returned yet)"
                continue
            futures[name] = _pending[name] = _checks.submit(check)
    wait(futures.values(), timeout=timeout)
    for name, future in futures.items():
        if not future.done():
            results[name] = f"no answer within {timeout:g} s"
        elif future.exception() is not None:
            exc = future.exception()
            results[name] = f"unreachable ({type(exc).__name__})"
            log.warning("readyz: the %s check failed: %s", name, exc)
        else:
            results[name] = "ok"
    return {name: results[name] for name in CHECKS}


def readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness()
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        body = {"status": "unavailable", "failed": failed, "checks": checks}
        response = JsonResponse(body, status=503, headers={"Retry-After": "10"})
        response._has_been_logged = True  # the warning above says why; no "Service Unavailable" error line
        return response
    return JsonResponse({"status": "ready", "failed": [], "checks": checks})
