"""Which queues live workers consume: each worker says so, so a run page can tell "no GPU worker" from "busy".

With each refresh the worker also writes its presence record (`WorkerPresence`: host, pids, concurrency, torch
threads), which the staff page "Workers and queues" and /metrics read (`experiments.monitoring`); a worker
silent for a day is forgotten.

A worker records (worker, queue) rows when it is ready, refreshes them every WORKER_PRESENCE_SECONDS from a
thread in its main process (`experiments.worker`), and deletes them when it shuts down. A worker killed
without a shutdown leaves rows that stop being refreshed: after WORKER_GONE_AFTER_SECONDS they count for
nothing (`experiments.selectors.live_queues`), and the next worker of that name replaces them.

Database rows rather than the broker's own bookkeeping: every transport (Redis, the embedded filesystem
broker) works the same, and the page answers with one indexed query instead of asking every worker over
the broker (`celery inspect active_queues` blocks for a second or more).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models.functions import Now

from experiments.models import WorkerPresence, WorkerQueue

# A worker silent this long is no longer listed on the staff page or in /metrics (its rows are deleted).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class WorkerDetails:
    """What a worker says about itself besides its queues (shown on the staff page "Workers and queues")."""

    host: str
    pid: int
    pool_pids: list[int] = field(default_factory=list)
    concurrency: int = 1
    torch_threads: int = 1


@transaction.atomic
def worker_queues_record(*, worker: str, queues: Iterable[str], details: WorkerDetails | None = None) -> None:
    """The worker consumes these queues now (and no others); with `details`, its presence record too."""
    queues = sorted(set(queues))
    WorkerQueue.objects.filter(worker=worker).exclude(queue__in=queues).delete()
    for queue in queues:
        WorkerQueue.objects.update_or_create(worker=worker, queue=queue, defaults={"seen_at": Now()})
    if details is None:
        return
    fields = {
        "host": details.host,
        "pid": details.pid,
        "pool_pids": sorted(details.pool_pids),
        "queues": queues,
        "concurrency": details.concurrency,
        "torch_threads": details.torch_threads,
        "seen_at": Now(),
    }
    # A restarted worker (same name, new main process) starts a new record.
    updated = WorkerPresence.objects.filter(worker=worker, pid=details.pid).update(**fields)
    if not updated:
        WorkerPresence.objects.filter(worker=worker).delete()
        WorkerPresence.objects.create(worker=worker, started_at=Now(), **fields)
    forgotten = WorkerPresence.objects.filter(seen_at__lt=Now() - FORGET_AFTER).values_list("worker", flat=True)
    WorkerQueue.objects.filter(worker__in=list(forgotten)).delete()
    WorkerPresence.objects.filter(seen_at__lt=Now() - FORGET_AFTER).delete()


@transaction.atomic
def worker_queues_remove(*, worker: str) -> None:
    """The worker is shutting down: it consumes nothing."""
    WorkerQueue.objects.filter(worker=worker).delete()
    WorkerPresence.objects.filter(worker=worker).delete()
