"""Which queues live workers consume: each worker says so, so a run page can tell "no GPU worker" from "busy".

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

from django.db import transaction
from django.db.models.functions import Now

from experiments.models import WorkerQueue


@transaction.atomic
def worker_queues_record(*, worker: str, queues: Iterable[str]) -> None:
    """The worker consumes these queues now (and no others)."""
    queues = sorted(set(queues))
    WorkerQueue.objects.filter(worker=worker).exclude(queue__in=queues).delete()
    for queue in queues:
        WorkerQueue.objects.update_or_create(worker=worker, queue=queue, defaults={"seen_at": Now()})


def worker_queues_remove(*, worker: str) -> None:
    """The worker is shutting down: it consumes nothing."""
    WorkerQueue.objects.filter(worker=worker).delete()
