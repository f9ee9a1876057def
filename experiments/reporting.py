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

from django.db import close_old_connections, connection
from django.db.models.functions import Now

from experiments.engine.runtime import ArtifactRecord
from experiments.models import ExperimentRun, RunStatus

log = logging.getLogger(__name__)


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
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)
        self.lost = False  # the run stopped being ours (re-queued or finished elsewhere)

    # -- Reporter protocol (called from the kind's thread) ---------------------------------

    def progress(self, fraction: float, message: str) -> None:
        with self._lock:
            self._progress = (fraction, message)

    def metric(self, name: str, value: float | None, step: int) -> None:
        self._series_dirty = True

    def artifact(self, record: ArtifactRecord) -> None:
        pass  # artifacts are recorded with the outcome, in the same transaction

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
            if self._series_dirty:
                # dict.copy() and list() are single steps under the GIL, so this snapshot is
                # consistent even while the kind's thread appends.
                fields["series"] = {name: list(points) for name, points in self.series.copy().items()}
                self._series_dirty = False
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
