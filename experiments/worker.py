"""Worker-side hooks that run in the Celery worker's main process, where a dead child cannot reach.

- `RunRequest` sees what happens to a run's process from outside: when the
  process was killed (out of memory, a segfault, kill -9) the run is queued
  again while attempts remain, else failed; when the hard time limit killed
  it, the run fails with that reason.
- A reaper thread in every worker re-queues or fails runs whose heartbeat went
  stale (their whole worker died) and resends queued runs whose message was lost.
  After the database was unreachable it waits one stale interval before judging
  heartbeats: nobody could write one during the outage, and a run that finished
  meanwhile must get to store its outcome rather than be run again.
- A presence thread records which queues this worker consumes, every
  WORKER_PRESENCE_SECONDS, and the record is removed at shutdown: a queued run
  whose queue no live worker consumes says so on its page
  (`experiments.services.workers`). The record also says where the worker runs,
  its pool processes, concurrency and torch threads (the staff page
  "Workers and queues" and /metrics read it).
- Torch threads: every pool process sets `torch.set_num_threads` when it starts
  (WORKER_TORCH_THREADS, else the worker's CPUs // its concurrency; see
  `experiments.torch_threads`); a solo or threads pool runs runs in the main
  process, which then sets it itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery.signals import celeryd_after_setup, worker_process_init, worker_ready, worker_shutdown
from celery.worker.request import Request
from django.conf import settings
from django.db import close_old_connections

from config.availability import DATABASE_UNAVAILABLE
from experiments.torch_threads import available_cpus, torch_threads_apply, torch_threads_for

if TYPE_CHECKING:
    from experiments.services.workers import WorkerDetails

log = logging.getLogger(__name__)


def _run_id(request: Request) -> int | None:
    try:
        return int(request.args[0])
    except (IndexError, TypeError, ValueError):
        return None


class RunRequest(Request):
    def _attempt_worker(self) -> str:
        """The identity (host:pid) the pool process wrote when it claimed the run."""
        from experiments.services.runs import worker_identity

        return worker_identity(self.worker_pid)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft and (run_id := _run_id(self)) is not None:
            from experiments.services import run_time_limit_exceeded

            close_old_connections()
            run_time_limit_exceeded(run_id=run_id, seconds=timeout, worker=self._attempt_worker())
        super().on_timeout(soft, timeout)

    def on_failure(self, exc_info, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = getattr(exc_info.exception, "exc", exc_info.exception)
        run_id = _run_id(self)
        if (
            run_id is not None
            and isinstance(exc, WorkerLostError | SystemExit)
            and not isinstance(exc, TimeLimitExceeded)
        ):
            from experiments.services import run_worker_lost

            close_old_connections()
            # Before the message is requeued below, so the redelivery finds the run queued (or failed).
            run_worker_lost(run_id=run_id, reason=f"The worker process died ({exc})", worker=self._attempt_worker())
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


_stop = threading.Event()


def _reap_forever(interval: float) -> None:
    from experiments.services import runs_reap

    database_lost_at: float | None = None  # monotonic time of the last pass the database refused
    while not _stop.wait(interval):
        recovering = (
            database_lost_at is not None and time.monotonic() - database_lost_at < settings.RUN_STALE_AFTER_SECONDS
        )
        try:
            close_old_connections()
            report = runs_reap(reap_silent=not recovering)
        except DATABASE_UNAVAILABLE as exc:
            database_lost_at = time.monotonic()
            log.warning("reaper: the database is unavailable (%s); trying again in %g s", exc, interval)
            continue
        except Exception:
            log.exception("reaper pass failed")
            continue
        if report.requeued or report.failed or report.resent:
            log.warning("reaper: requeued %s, failed %s, resent %s", report.requeued, report.failed, report.resent)


# Decided in the main process when the worker is set up (before its pool processes fork, which inherit it).
_pool_threads: dict[str, int] = {}


@celeryd_after_setup.connect
def decide_torch_threads(sender=None, instance=None, **_: object) -> None:
    """Torch threads per run process, from this worker's CPUs and concurrency; logged once at start."""
    concurrency = int(getattr(instance, "concurrency", None) or 1)
    threads = torch_threads_for(concurrency=concurrency, override=settings.WORKER_TORCH_THREADS)
    _pool_threads.update(concurrency=concurrency, torch_threads=threads)
    override = settings.WORKER_TORCH_THREADS > 0
    source = "WORKER_TORCH_THREADS" if override else f"{available_cpus()} CPUs // concurrency {concurrency}"
    log.info("torch threads per run process: %d (%s)", threads, source)
    pool_cls = getattr(instance, "pool_cls", None)
    if pool_cls is not None and not getattr(pool_cls, "__module__", "").endswith("prefork"):
        torch_threads_apply(threads)  # solo or threads pool: runs execute in this process


@worker_process_init.connect
def set_torch_threads(**_: object) -> None:
    """In each pool process as it starts, before it takes a run."""
    threads = _pool_threads.get("torch_threads") or torch_threads_for(
        concurrency=1, override=settings.WORKER_TORCH_THREADS
    )
    used = torch_threads_apply(threads)
    log.info("pool process %d: %d torch threads", os.getpid(), used)


def _details(consumer) -> WorkerDetails:
    """What the presence record says about this worker; its pool processes are read anew each time (a dead
    child is replaced by one with a new pid)."""
    from experiments.services.workers import WorkerDetails

    info = consumer.pool.info if getattr(consumer, "pool", None) is not None else {}
    return WorkerDetails(
        host=socket.gethostname(),
        pid=os.getpid(),
        pool_pids=[int(pid) for pid in info.get("processes", ())],
        concurrency=_pool_threads.get("concurrency", 1),
        torch_threads=_pool_threads.get("torch_threads", 1),
    )


def _record_queues_forever(worker: str, queues: list[str], interval: float, consumer=None) -> None:
    from experiments.services.workers import worker_queues_record

    while True:
        try:
            close_old_connections()
            details = _details(consumer) if consumer is not None else None
            worker_queues_record(worker=worker, queues=queues, details=details)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("presence: the database is unavailable (%s); trying again in %g s", exc, interval)
        except Exception:
            log.exception("presence: recording this worker's queues failed")
        if _stop.wait(interval):
            return


_presence: dict[str, object] = {}  # this worker's name and its presence thread, once it records its queues


@worker_ready.connect
def start_reaper(**_: object) -> None:
    interval = settings.RUN_REAP_INTERVAL_SECONDS
    if interval > 0:
        threading.Thread(target=_reap_forever, args=(interval,), name="run-reaper", daemon=True).start()


@worker_ready.connect
def start_presence(sender=None, **_: object) -> None:
    """Record the queues this worker consumes (`-Q`), now and every WORKER_PRESENCE_SECONDS."""
    if sender is None:
        return
    queues = sorted(sender.app.amqp.queues.consume_from)
    args = (sender.hostname, queues, settings.WORKER_PRESENCE_SECONDS, sender)
    thread = threading.Thread(target=_record_queues_forever, args=args, name="worker-presence", daemon=True)
    _presence.update(worker=sender.hostname, thread=thread)
    thread.start()


@worker_shutdown.connect
def stop_reaper(**_: object) -> None:
    _stop.set()
    if worker := _presence.get("worker"):
        from experiments.services.workers import worker_queues_remove

        _presence["thread"].join(timeout=5)  # a record being written now must not land after the removal
        try:
            close_old_connections()
            worker_queues_remove(worker=worker)
        except Exception:  # the rows go stale on their own after WORKER_GONE_AFTER_SECONDS
            log.warning("presence: could not remove this worker's queues at shutdown", exc_info=True)
