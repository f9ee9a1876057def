"""Reads of what the workers and queues are doing: the staff page "Workers and queues" and /metrics share them.

Workers come from their presence records (`WorkerPresence`, refreshed every WORKER_PRESENCE_SECONDS); one
silent for WORKER_GONE_AFTER_SECONDS is stale. A running run belongs to the worker one of whose processes
claimed it (`ExperimentRun.worker` is host:pid). Queue depths come from two places that can disagree, and
both are shown: the broker's waiting messages, and the runs the database holds as queued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone

from experiments.broker import BrokerUnavailable, queue_lengths
from experiments.models import FINISHED_RUN_STATUSES, ExperimentRun, RunStatus, WorkerPresence

log = logging.getLogger(__name__)

KNOWN_QUEUES = ("cpu", "gpu")
# Run durations, from a smoke test (seconds) to the longest time limit (hours).
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600)
RUNNING_FIELDS = ("id", "kind", "queue", "worker", "progress", "progress_message", "started_at", "spec_id")


@dataclass
class WorkerState:
    presence: WorkerPresence
    age_seconds: float  # since its last heartbeat
    stale: bool
    running: list[ExperimentRun] = field(default_factory=list)


@dataclass
class QueueState:
    name: str
    broker_messages: int | None  # None: the broker could not be read
    queued_runs: int
    oldest_queued_at: datetime | None
    consumers: list[str]  # live workers consuming it

    @property
    def oldest_queued_seconds(self) -> float | None:
        if self.oldest_queued_at is None:
            return None
        return max(0.0, (timezone.now() - self.oldest_queued_at).total_seconds())

    @property
    def unserved(self) -> bool:
        """Runs wait here but no live worker consumes it."""
        return self.queued_runs > 0 and not self.consumers


@dataclass
class DurationStats:
    kind: str
    status: str
    bucket_counts: list[int]  # cumulative, one per DURATION_BUCKETS
    count: int
    total_seconds: float


def worker_states() -> list[WorkerState]:
    """Every worker heard from in the last day, newest heartbeat first, each with the runs it is running."""
    now = timezone.now()
    gone_after = settings.WORKER_GONE_AFTER_SECONDS
    states = []
    for presence in WorkerPresence.objects.order_by("-seen_at", "worker"):
        age = max(0.0, (now - presence.seen_at).total_seconds())
        states.append(WorkerState(presence=presence, age_seconds=age, stale=age > gone_after))
    owner = {identity: state for state in states for identity in state.presence.identities}
    running = ExperimentRun.objects.filter(status=RunStatus.RUNNING, worker__in=list(owner)).only(*RUNNING_FIELDS)
    for run in running.order_by("started_at", "id"):
        owner[run.worker].running.append(run)
    return states


def queue_states(workers: list[WorkerState] | None = None) -> tuple[list[QueueState], str]:
    """Each queue's depth in the broker and in the database, and its live consumers; plus the broker's trouble.

    The second value is "" when the broker answered, else why its depths are unknown.
    """
    workers = worker_states() if workers is None else workers
    queued = (
        ExperimentRun.objects.filter(status=RunStatus.QUEUED)
        .order_by()
        .values("queue")
        .annotate(n=Count("id"), oldest=Min("created_at"))
    )
    db_queues = {row["queue"]: row for row in queued}
    consumers: dict[str, list[str]] = {}
    for state in workers:
        if not state.stale:
            for queue in state.presence.queues:
                consumers.setdefault(queue, []).append(state.presence.worker)
    names = sorted({*KNOWN_QUEUES, *db_queues, *consumers})
    trouble = ""
    try:
        lengths = queue_lengths(names)
        if lengths is None:
            trouble = "this broker's queues cannot be counted"
    except BrokerUnavailable as exc:
        lengths = None
        trouble = "the broker does not answer"
        log.warning("workers and queues: the broker does not answer (%s)", exc)
    states = [
        QueueState(
            name=name,
            broker_messages=None if lengths is None else lengths.get(name, 0),
            queued_runs=db_queues.get(name, {}).get("n", 0),
            oldest_queued_at=db_queues.get(name, {}).get("oldest"),
            consumers=sorted(consumers.get(name, [])),
        )
        for name in names
    ]
    return states, trouble


def run_counts_by_status() -> dict[str, int]:
    """How many runs are in each state (every state named, zero when none)."""
    counts = dict.fromkeys(RunStatus.values, 0)
    for row in ExperimentRun.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def run_duration_stats() -> list[DurationStats]:
    """Finished runs' durations (start of the last attempt to finish) by kind and final state, in one query."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        ExperimentRun.objects.filter(
            status__in=FINISHED_RUN_STATUSES, started_at__isnull=False, finished_at__isnull=False
        )
        .annotate(duration=duration)
        .order_by()
        .values("kind", "status")
        .annotate(count=Count("id"), total=Sum("duration"), **buckets)
        .order_by("kind", "status")
    )
    return [
        DurationStats(
            kind=row["kind"],
            status=row["status"],
            bucket_counts=[row[f"le_{i}"] for i in range(len(DURATION_BUCKETS))],
            count=row["count"],
            total_seconds=row["total"].total_seconds() if row["total"] else 0.0,
        )
        for row in rows
    ]
