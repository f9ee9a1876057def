"""The worker's reporter: a heartbeat thread that writes a run's progress to the database.

Kinds report progress and metrics as often as they like; those calls only
touch memory. Every `interval` seconds the heartbeat thread writes the latest
progress, the step series and the heartbeat time in one UPDATE, and reads back
whether someone asked to cancel. The UPDATE is fenced by (status=running,
attempts=this attempt): when the run is no longer ours (the reaper re-queued it
after a stall, or it was cancelled), the update matches nothing and the run is
told to stop.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.db import close_old_connections, connection
from django.db.models.functions import Now

from experiments.engine.runtime import ArtifactRecord
from experiments.models import ExperimentRun, RunStatus

log = logging.getLogger(__name__)

ETA_WINDOW_SECONDS = 120.0  # the pace of the last two minutes estimates what is left
ETA_MIN_SECONDS = 5.0  # no estimate until the run has moved for this long
ETA_SAMPLE_SECONDS = 1.0  # at most one pace sample a second, however often a kind reports


class DatabaseReporter:
    def __init__(self, *, run_id: int, attempt: int, interval: float) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.interval = interval
        self._lock = threading.Lock()
        self._progress: tuple[float, str] | None = None
        # The context's own series dict (bounded in length); the heartbeat writes a snapshot of it.
        self.series: dict[str, list[tuple[int, float | None]]] = {}
        self._series_dirty = False
        # The context's finished parts and log (lists it appends to); written when they change.
        self.parts: list[dict] = []
        self.log_entries: list[dict] = []
        self._parts_dirty = self._log_dirty = False
        self._pace: list[tuple[float, float]] = []  # (monotonic time, progress), for the estimated finish
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)
        self.lost = False  # the run stopped being ours (re-queued or finished elsewhere)

    # -- Reporter protocol (called from the kind's thread) ---------------------------------

    def progress(self, fraction: float, message: str) -> None:
        with self._lock:
            self._progress = (fraction, message)
            now = time.monotonic()
            if not self._pace or (fraction > self._pace[-1][1] and now - self._pace[-1][0] >= ETA_SAMPLE_SECONDS):
                self._pace.append((now, fraction))
            while len(self._pace) > 2 and self._pace[1][0] < now - ETA_WINDOW_SECONDS:
                del self._pace[0]

    def metric(self, name: str, value: float | None, step: int) -> None:
        self._series_dirty = True

    def artifact(self, record: ArtifactRecord) -> None:
        pass  # artifacts are recorded with the outcome, in the same transaction

    def part(self, part: dict) -> None:
        self._parts_dirty = True

    def log(self, entry: dict) -> None:
        self._log_dirty = True

    def seconds_left(self) -> float | None:
        """The time left at the pace of the last ETA_WINDOW_SECONDS (progress per second), or None this early."""
        with self._lock:
            if len(self._pace) < 2:
                return None
            (t0, p0), (t1, p1) = self._pace[0], self._pace[-1]
        span = max(t1, time.monotonic()) - t0
        if span < ETA_MIN_SECONDS or p1 <= p0:
            return None
        return (1.0 - p1) * span / (p1 - p0)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> DatabaseReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval * 4 + 5)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.flush()
        finally:
            connection.close()  # this thread's own connection

    def flush(self) -> None:
        with self._lock:
            fields: dict = {"heartbeat_at": Now()}  # database time, like the reaper's comparison
            if self._progress is not None:
                fields["progress"], fields["progress_message"] = self._progress
            # Each flag is cleared before its snapshot is taken: what the kind's thread adds meanwhile is either
            # in the snapshot or sets the flag again for the next beat, never lost. dict.copy() and list() are
            # single steps under the GIL, so each snapshot is consistent while that thread appends.
            if self._series_dirty:
                self._series_dirty = False
                fields["series"] = {name: list(points) for name, points in self.series.copy().items()}
            if self._parts_dirty:
                self._parts_dirty = False
                fields["parts"] = list(self.parts)
            if self._log_dirty:
                self._log_dirty = False
                fields["log"] = list(self.log_entries)
        left = self.seconds_left()
        if left is not None:
            fields["estimated_finish_at"] = Now() + timedelta(seconds=min(left, 30 * 86400))
        try:
            close_old_connections()
            mine = ExperimentRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING, attempts=self.attempt)
            if mine.update(**fields) == 0:
                self.lost = True
                self._cancel.set()
                return
            if mine.filter(cancel_requested=True).exists():
                self._cancel.set()
        except Exception:  # a database hiccup must not kill the run; the next beat retries
            log.exception("heartbeat of run %s failed", self.run_id)
