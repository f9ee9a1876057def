"""The life of a run: trigger, execute, cancel, worker loss, time limits, reaping.

States: queued -> running -> succeeded | failed | cancelled, and running ->
queued again when an attempt dies while attempts remain. Every transition is a
conditional UPDATE on the state it leaves (and, from `running`, on the attempt
number, a fencing token), so a redelivered message, a zombie attempt or two
reapers at once can never run a run twice or overwrite a newer outcome.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection, transaction
from django.db.models import Case, F, Q, When
from django.db.models.functions import Now
from django.utils import timezone

from config.availability import DATABASE_UNAVAILABLE
from experiments.engine import ENGINE_VERSION
from experiments.engine.errors import EngineError, RunCancelled
from experiments.engine.executor import execute
from experiments.engine.registry import KindResult
from experiments.engine.runtime import (
    LOG_HEAD,
    ArtifactRecord,
    RunContext,
    environment_versions,
    part_metrics,
    resolve_device,
)
from experiments.errors import ArtifactStorageUnavailable, RunQuotaExceeded
from experiments.models import ACTIVE_RUN_STATUSES, Artifact, ExperimentRun, ExperimentSpec, RunStatus
from experiments.reporting import DatabaseReporter
from experiments.services.evidence import idea_status_follow_verdicts, verdict_for
from experiments.services.specs import kind_get, params_validate, spec_hash
from experiments.storage import attempt_file_name, attempt_scratch_remove, attempt_upload, run_attempt_dir
from ideas.services import user_can_edit_idea

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class TriggerResult:
    run: ExperimentRun
    cached: bool  # an identical spec already succeeded: this is its run
    created: bool  # a new run was queued


def _send(run: ExperimentRun) -> None:
    """Send the task message (after commit). A broker failure leaves the run queued for the reaper to resend.

    `sent_at` is written before sending (with the run itself, or by the reaper) rather than after, so the
    sender never competes with the worker's claim for the row; a failed send clears it.
    """
    from experiments.tasks import execute_run

    try:
        execute_run.apply_async(
            args=[run.pk],
            queue=run.queue,
            task_id=run.task_id,
            # soft == hard means "no soft warning" (the smoke kind's hard-limit test uses it).
            soft_time_limit=run.soft_time_limit if run.soft_time_limit < run.time_limit else None,
            time_limit=run.time_limit,
        )
    except Exception:
        log.exception("could not send run %s to the broker; the reaper will resend it", run.pk)
        ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(sent_at=None)


def run_trigger(*, spec: ExperimentSpec, user, force: bool = False, dispatch: bool = True) -> TriggerResult:
    """Queue a run of `spec`, or return the run that already answers it.

    The params are validated again (the kind may have changed since the spec was
    written). Without `force`, a succeeded run with the same spec hash is
    returned as cached, and a queued or running one is returned as is (a double
    click never makes two runs). `force` asks for a replication. `dispatch=False`
    queues without sending a task, for `manage.py run_experiment`, which runs it
    in-process; only that operator path may pass `user=None`.
    """
    if dispatch and (not user or not user.is_authenticated):
        raise PermissionDenied("Sign in to run experiments.")
    kind = kind_get(spec.kind)
    params = params_validate(kind, spec.params)
    if kind.needs is not None and (missing := kind.needs(params)):
        # A spec may be saved before what it needs exists (a request set still to upload), but not run.
        raise ValidationError({f"params.{path}": [message] for path, message in missing.items()})
    digest = spec_hash(kind=kind, params=params, seed=spec.seed)
    with transaction.atomic():
        # One trigger of a spec at a time, so two identical requests cannot both queue.
        ExperimentSpec.objects.select_for_update().filter(pk=spec.pk).first()
        if not force:
            # One query for both answers: the newest succeeded run wins over a queued or running one.
            existing = (
                spec.runs.filter(spec_hash=digest, status__in=[RunStatus.SUCCEEDED, *ACTIVE_RUN_STATUSES])
                .order_by(Case(When(status=RunStatus.SUCCEEDED, then=0), default=1), "-created_at")
                .first()
            )
            if existing is not None:
                return TriggerResult(run=existing, cached=existing.status == RunStatus.SUCCEEDED, created=False)
        queued = ExperimentRun.objects.filter(created_by=user, status=RunStatus.QUEUED).count() if user else 0
        if queued >= settings.RUN_QUEUE_CAP_PER_USER:
            raise RunQuotaExceeded(
                f"You have {queued} queued runs, the most one person may have; wait for some to start."
            )
        soft, hard = kind.time_limits(params)
        run = ExperimentRun.objects.create(
            spec=spec,
            kind=kind.key,
            params=kind.normalized_params(params),
            seed=spec.seed,
            spec_hash=digest,
            forced=force,
            queue="gpu" if kind.device == "gpu" else "cpu",
            soft_time_limit=soft,
            time_limit=hard,
            max_attempts=settings.RUN_MAX_ATTEMPTS,
            task_id=str(uuid.uuid4()),
            created_by=user,
            sent_at=timezone.now() if dispatch else None,
        )
        if dispatch:
            transaction.on_commit(lambda: _send(run))
    return TriggerResult(run=run, cached=False, created=True)


@cache
def _git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _manifest(run: ExperimentRun, kind, device) -> dict:
    return {
        "spec_hash": run.spec_hash,
        "kind": kind.key,
        "kind_version": kind.version,
        "engine_version": ENGINE_VERSION,
        "params": run.params,
        "seed": run.seed,
        "git_commit": settings.GIT_COMMIT or _git_commit(),
        "versions": environment_versions(),
        "device": str(device),
        "worker": run.worker,
        "attempt": run.attempts,
    }


def _claim(run_id: int, worker: str) -> ExperimentRun | None:
    """queued -> running, counting the attempt; None if the run is not queued (done, running elsewhere, cancelled)."""
    now = timezone.now()
    claimed = ExperimentRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested=False).update(
        status=RunStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=Now(),  # database time: the reaper compares it with database time, never a worker's clock
        worker=worker,
        # A new attempt starts over: what an earlier, lost attempt reported is not this one's.
        progress=0.0,
        progress_message="starting",
        series={},
        parts=[],
        log=[],
        estimated_finish_at=None,
        error="",
        error_traceback="",
    )
    if not claimed:
        # A queued run someone cancelled never starts.
        ExperimentRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested=True).update(
            status=RunStatus.CANCELLED, finished_at=now, progress_message="cancelled before it started"
        )
        return None
    return ExperimentRun.objects.select_related("spec__idea").get(pk=run_id)


def _finish(run: ExperimentRun, status: str, **fields) -> bool:
    """running -> a final state, only if this attempt still owns the run."""
    return bool(
        ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=run.attempts).update(
            status=status, finished_at=timezone.now(), estimated_finish_at=None, **fields
        )
    )


def _reports(ctx: RunContext) -> dict:
    """What the context gathered that every outcome keeps: step series, finished parts and the log."""
    log_entries = list(ctx.log_entries)
    if ctx.log_left_out:
        note = {"t": log_entries[LOG_HEAD]["t"], "level": "info", "message": f"… {ctx.log_left_out} lines left out"}
        log_entries.insert(LOG_HEAD, note)
    return {
        "series": {name: list(points) for name, points in ctx.series.items()},
        "parts": list(ctx.parts),
        "log": log_entries,
    }


@transaction.atomic
def _store_success(run: ExperimentRun, ctx: RunContext, result: KindResult, manifest: dict) -> bool:
    verdict = verdict_for(run.spec.criterion, result.metrics)
    owned = _finish(
        run,
        RunStatus.SUCCEEDED,
        progress=1.0,
        progress_message="done",
        findings=result.findings,
        headline=result.headline or "",
        metrics=result.metrics,
        summary=result.summary,
        manifest=manifest,
        verdict=verdict,
        **_reports(ctx),
    )
    if not owned:
        return False
    _store_artifacts(run, ctx)
    if verdict:
        run.verdict = verdict
        idea_status_follow_verdicts(idea=run.spec.idea, run=run)
    return True


@transaction.atomic
def _store_unfinished(run: ExperimentRun, ctx: RunContext, status: str, *, with_files: bool = True, **fields) -> bool:
    """Failed or cancelled: keep what the attempt reported, and the results and files of the parts it finished
    (marked partial). A partial run gives no verdict: its criterion may read a part it never reached.
    Without `with_files` (the artifact storage did not take them) the parts are kept without their files."""
    reports = _reports(ctx)
    kept = _kept_parts(ctx.parts, with_files=with_files)
    if "parts" in kept:
        reports.pop("parts")  # the kept parts, emptied of their artifacts, replace them
    if not _finish(run, status, **fields, **reports, **kept):
        return False
    if ctx.parts and with_files:
        _store_artifacts(run, ctx, keep=_finished_parts_files(ctx))
    return True


def _finished_parts_files(ctx: RunContext) -> Callable[[ArtifactRecord], bool]:
    """Which of an unfinished attempt's files are kept: those of the parts it finished."""
    finished = {part["key"] for part in ctx.parts}
    return lambda record: record.meta.get("part", "") in finished


def _kept_parts(parts: list[dict], *, with_files: bool = True) -> dict:
    """The fields of a run that stopped after finishing `parts`: their metrics and findings, marked partial.

    Without `with_files` (the attempt's process died before it could record its artifacts) the parts name no
    artifacts, so none of them is a broken link."""
    if not parts:
        return {}
    kept = {
        "partial": True,
        "metrics": part_metrics(parts),
        "findings": [f"{part['label']}: {finding}" for part in parts for finding in part["findings"]],
    }
    if not with_files:
        kept["parts"] = [{**part, "artifacts": []} for part in parts]
    return kept


def _store_artifacts(run: ExperimentRun, ctx: RunContext, keep=lambda record: True) -> None:
    """The rows of the files the outcome keeps, which `attempt_upload` has put into the artifact storage."""
    Artifact.objects.bulk_create(
        Artifact(
            run=run,
            name=rec.name,
            path=attempt_file_name(run.pk, run.attempts, rec.path),
            artifact_type=rec.artifact_type,
            content_type=rec.content_type,
            size=rec.size,
            sha256=rec.sha256,
            meta=rec.meta,
        )
        for rec in ctx.artifacts.values()
        if keep(rec)
    )


def _refresh_connection() -> None:
    """Drop a broken or too-old database connection (never one inside a transaction: the caller's)."""
    if not connection.in_atomic_block:
        close_old_connections()


def _until_stored(write: Callable[[], T], *, run_id: int) -> T:
    """Call `write` until the database takes it, for at most RUN_FINAL_WRITE_RETRY_SECONDS.

    An attempt that did all its work must not lose it to a database restart: the reaper would
    queue the run again and a second attempt would repeat everything.
    """
    deadline = time.monotonic() + settings.RUN_FINAL_WRITE_RETRY_SECONDS
    delay = 0.5
    while True:
        _refresh_connection()
        try:
            return write()
        except DATABASE_UNAVAILABLE as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("run %s: cannot store the outcome (%s); trying again in %.1f s", run_id, exc, delay)
            if not connection.in_atomic_block:
                connection.close()  # a connection the server dropped is not reused
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def worker_identity(pid: int | None = None) -> str:
    """host:pid of the process running an attempt; the worker's main process matches its children by it."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def run_execute(*, run_id: int, worker: str = "") -> ExperimentRun | None:
    """Claim a queued run and execute it through the engine; store its outcome. None when not claimed.

    Whatever goes wrong after the claim (the spec no longer validates, the kind raises, storing the outcome
    fails), the attempt ends in a final state with the reason, never left `running` for the reaper; only a
    database that stays unreachable longer than RUN_FINAL_WRITE_RETRY_SECONDS leaves it to the reaper.
    """
    run = _claim(run_id, worker or worker_identity())
    if run is None:
        return None
    try:
        _execute_claimed(run)
    except Exception as exc:  # the last line of defence: record why, with a fresh connection
        log.exception("run %s failed outside its kind", run.pk)
        message, detail = _describe(exc, run)
        _until_stored(
            lambda: _finish(run, RunStatus.FAILED, error=f"Internal error: {message}", error_traceback=detail),
            run_id=run.pk,
        )
    run.refresh_from_db()
    return run


def _describe(exc: BaseException, run: ExperimentRun, at: str = "") -> tuple[str, str]:
    """What users read about a failure (the exception's message and where the kind was), and the traceback.

    The traceback names server paths and code: it is kept for staff (admin, worker log), never shown on the
    pages or in the API.
    """
    detail = "".join(traceback.format_exception(exc))
    if type(exc).__name__ == "SoftTimeLimitExceeded":
        message = f"Exceeded the soft time limit of {run.soft_time_limit} s."
    elif isinstance(exc, EngineError):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if at and at not in ("starting", "done"):
        message += f" (at: {at})"
    return message, detail


def _execute_claimed(run: ExperimentRun) -> None:
    if run.attempts > run.max_attempts:
        _finish(run, RunStatus.FAILED, error=f"Gave up after {run.max_attempts} attempts.")
        return
    try:
        kind = kind_get(run.kind)
        params = params_validate(kind, run.params)
    except ValidationError as exc:
        _finish(run, RunStatus.FAILED, error=f"The spec is no longer runnable: {exc.message_dict}")
        return
    except ArtifactStorageUnavailable as exc:  # checking a checkpoint or dataset it names: retried, like the kind
        _attempt_lost_to_storage(run, exc)
        return
    device = resolve_device(kind.device)
    from experiments.storage import DatabaseArtifactResolver, DatabaseDatasetResolver

    reporter = DatabaseReporter(run_id=run.pk, attempt=run.attempts, interval=settings.RUN_HEARTBEAT_SECONDS)
    ctx = RunContext(
        seed=run.seed,
        device=device,
        artifact_dir=run_attempt_dir(run.pk, run.attempts),
        reporter=reporter,
        artifact_resolver=DatabaseArtifactResolver(),
        dataset_resolver=DatabaseDatasetResolver(),
    )
    reporter.series, reporter.parts, reporter.log_entries = ctx.series, ctx.parts, ctx.log_entries
    run.device = str(device)
    manifest = _manifest(run, kind, device)
    # The manifest says what this attempt runs, from its first moment (the run page shows it while it runs).
    ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=run.attempts).update(
        device=run.device, manifest=manifest
    )
    # The heartbeat goes on until the outcome is stored, so a slow final write is not mistaken for a dead worker.
    with reporter:
        try:
            result = execute(kind, params, ctx)
        except RunCancelled:
            if reporter.lost:
                return  # the run is no longer this attempt's: nothing to store
            outcome = {"status": RunStatus.CANCELLED, "progress_message": "cancelled"}
        except ArtifactStorageUnavailable as exc:  # reading a checkpoint or dataset: the attempt, not the run, failed
            _attempt_lost_to_storage(run, exc)
            return
        except Exception as exc:
            message, detail = _describe(exc, run, at=ctx.progress_message)
            log.warning("run %s failed in kind %s: %s", run.pk, kind.key, message, exc_info=exc)
            outcome = {"status": RunStatus.FAILED, "error": message, "error_traceback": detail}
        else:
            try:
                # Files first: a run is never "succeeded" with rows whose files are not in the storage.
                _until_uploaded(run, reporter, list(ctx.artifacts.values()))
            except ArtifactStorageUnavailable as exc:
                _attempt_lost_to_storage(run, exc)  # a no-op on the run if the reaper took it meanwhile
                return
            _until_stored(lambda: _store_success(run, ctx, result, manifest), run_id=run.pk)
            attempt_scratch_remove(run_id=run.pk, attempt=run.attempts)
            return
        status = outcome.pop("status")
        with_files = _upload_kept_parts(run, ctx, outcome)
        _until_stored(lambda: _store_unfinished(run, ctx, status, with_files=with_files, **outcome), run_id=run.pk)
        attempt_scratch_remove(run_id=run.pk, attempt=run.attempts)


def _until_uploaded(run: ExperimentRun, reporter: DatabaseReporter, records: list) -> None:
    """Upload a finished attempt's files, trying again for up to ARTIFACT_UPLOAD_RETRY_SECONDS.

    The work is done: a brief storage outage must not send a long run back to the queue to be redone (and use up
    its attempts within a minute). The caller's heartbeat goes on meanwhile, so the reaper does not take the run
    for lost; if it does anyway (reporter.lost), the attempt stops trying. Raises the last
    ArtifactStorageUnavailable once the time is spent.
    """
    deadline = time.monotonic() + settings.ARTIFACT_UPLOAD_RETRY_SECONDS
    delay = 1.0
    while True:
        try:
            attempt_upload(run_id=run.pk, attempt=run.attempts, records=records)
            return
        except ArtifactStorageUnavailable as exc:
            if reporter.lost or time.monotonic() + delay > deadline:
                raise
            log.warning("run %s attempt %s: %s; trying again in %.0f s", run.pk, run.attempts, exc, delay)
            _pause_before_upload_retry(delay)
            delay = min(delay * 2, 30.0)


def _pause_before_upload_retry(seconds: float) -> None:
    time.sleep(seconds)


def _upload_kept_parts(run: ExperimentRun, ctx: RunContext, outcome: dict) -> bool:
    """Upload the files of the parts a failed or cancelled attempt finished; False when the storage did not take
    them, the reason added to the outcome's error (the run ends as it would have, its parts without files)."""
    if not ctx.parts:
        return True
    keep = _finished_parts_files(ctx)
    try:
        attempt_upload(run_id=run.pk, attempt=run.attempts, records=filter(keep, ctx.artifacts.values()))
    except ArtifactStorageUnavailable as exc:
        log.warning("run %s: the finished parts' files were not stored: %s", run.pk, exc)
        note = f"The finished parts' files could not be stored: {exc}"
        outcome["error"] = f"{outcome['error']} {note}" if outcome.get("error") else note
        return False
    return True


def _attempt_lost_to_storage(run: ExperimentRun, exc: ArtifactStorageUnavailable) -> None:
    """The artifact storage failed this attempt: the run is queued again while attempts remain (and sent again at
    once, as the reaper sends a re-queued run), else failed with the reason; never left running."""
    log.warning("run %s attempt %s: %s", run.pk, run.attempts, exc)
    status = _until_stored(
        lambda: _requeue_or_fail(run.pk, reason=str(exc), only_if=Q(attempts=run.attempts)), run_id=run.pk
    )
    attempt_scratch_remove(run_id=run.pk, attempt=run.attempts)
    if status == RunStatus.QUEUED:
        runs_resend_lost(requeued=[run.pk])


def run_can_cancel(user, run: ExperimentRun) -> bool:
    if not user or not user.is_authenticated:
        return False
    return user.is_staff or run.created_by_id == user.pk or user_can_edit_idea(user, run.spec.idea)


def run_cancel(*, run: ExperimentRun, user) -> ExperimentRun:
    """Cancel a run: a queued one never starts; a running one stops at its next cancellation check.

    Returns `run` with what changed set on it; it is read again only when it finished meanwhile.
    """
    if not run_can_cancel(user, run):
        raise PermissionDenied("Only the person who started the run, the idea's author or staff can cancel it.")
    now = timezone.now()
    when_queued = {"status": RunStatus.CANCELLED, "cancel_requested": True, "finished_at": now}
    when_running = {"cancel_requested": True, "progress_message": "cancelling"}
    if ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        **when_queued, progress_message="cancelled"
    ):
        changed = {**when_queued, "progress_message": "cancelled"}
    elif ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**when_running):
        changed = {**when_running, "status": RunStatus.RUNNING}  # it may have started since it was read
    else:  # it finished, perhaps since it was read: show how
        run.refresh_from_db()
        return run
    for field, value in changed.items():
        setattr(run, field, value)
    return run


def _requeue_or_fail(run_id: int, *, reason: str, only_if=None) -> str | None:
    """After an attempt died: queue the run again while attempts remain, else fail it. Returns the new status.

    `only_if` narrows which running run this is about (the attempt a worker process ran, a heartbeat still
    stale under the lock), so a stale observation never touches a newer, healthy attempt.
    """
    with transaction.atomic():
        candidates = ExperimentRun.objects.select_for_update().filter(pk=run_id, status=RunStatus.RUNNING)
        run = candidates.filter(only_if).first() if only_if is not None else candidates.first()
        if run is None:
            return None
        changed = {"estimated_finish_at": None}
        if run.cancel_requested:
            changed.update(status=RunStatus.CANCELLED, finished_at=timezone.now(), error=reason)
        elif run.attempts < run.max_attempts:
            # The next attempt starts over: the lost one's progress is not shown as if it still ran.
            changed.update(
                status=RunStatus.QUEUED,
                error=f"Attempt {run.attempts} lost: {reason}",
                progress_message="re-queued",
                progress=0.0,
                started_at=None,
                series={},
                parts=[],
            )
        else:
            changed.update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                error=f"{reason} (attempt {run.attempts} of {run.max_attempts}; giving up).",
            )
        if changed["status"] != RunStatus.QUEUED:
            changed.update(_kept_parts(run.parts, with_files=False))
        for name, value in changed.items():
            setattr(run, name, value)
        run.save(update_fields=list(changed))
        return run.status


def run_worker_lost(*, run_id: int, reason: str, worker: str) -> str | None:
    """The process `worker` (host:pid) running this run died; the broker redelivers the message itself."""
    return _requeue_or_fail(run_id, reason=reason, only_if=Q(worker=worker))


def run_time_limit_exceeded(*, run_id: int, seconds: float, worker: str) -> bool:
    """The hard time limit killed the process `worker` (host:pid) running this run. The parts it finished (the
    heartbeat stored them) are kept, without their files: the process died before it could record them."""
    with transaction.atomic():
        run = ExperimentRun.objects.select_for_update().filter(pk=run_id, status=RunStatus.RUNNING, worker=worker)
        parts = run.values_list("parts", flat=True).first()
        if parts is None:
            return False
        return bool(
            run.update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                estimated_finish_at=None,
                error=f"Exceeded the hard time limit of {seconds:g} s; the worker process was killed.",
                **_kept_parts(parts, with_files=False),
            )
        )


@dataclass(frozen=True)
class ReapReport:
    requeued: list[int]
    failed: list[int]
    resent: list[int]


def runs_reap(
    *, stale_after: float | None = None, resend_after: float | None = None, reap_silent: bool = True
) -> ReapReport:
    """Find runs nobody is working on: the one reaper, run by every worker's reaper thread and `reap_runs`.

    A running run whose heartbeat is older than `stale_after` seconds (database time) lost its worker:
    it is queued again while attempts remain, else failed with the reason (skipped when `reap_silent`
    is false: see `experiments.worker` on database outages). Queued runs whose message is not in the
    broker are then sent again (`runs_resend_lost`).
    """
    stale_after = settings.RUN_STALE_AFTER_SECONDS if stale_after is None else stale_after
    requeued, failed = [], []
    if reap_silent:
        silent = Q(heartbeat_at__lt=Now() - timedelta(seconds=stale_after))
        stale = ExperimentRun.objects.filter(silent, status=RunStatus.RUNNING)
        for run_id, attempts in stale.values_list("pk", "attempts"):
            reason = f"The worker stopped sending heartbeats for more than {stale_after:g} s"
            # Re-checked under the row lock: the heartbeat may have arrived since the query above.
            outcome = _requeue_or_fail(run_id, reason=reason, only_if=silent & Q(attempts=attempts))
            if outcome == RunStatus.QUEUED:
                requeued.append(run_id)
            elif outcome == RunStatus.FAILED:
                failed.append(run_id)
    resent = runs_resend_lost(requeued=requeued, resend_after=resend_after)
    return ReapReport(requeued=requeued, failed=failed, resent=resent)


def runs_resend_lost(*, requeued: Sequence[int] = (), resend_after: float | None = None) -> list[int]:
    """Send queued runs again whose message the broker does not hold; returns their ids.

    A run is resent when it was just re-queued (`requeued`), when its send failed or never happened
    (`sent_at` is empty) or when its message is not waiting in the broker's queue, each once it is
    `RUN_RESEND_GRACE_SECONDS` old (a worker may be between taking the message and claiming the run).
    Where the broker cannot be read (a transport other than Redis), a run is resent once its message is
    `resend_after` seconds old. While the broker is down nothing is sent. A second message is harmless
    (the claim is conditional), and a conditional update of `sent_at` makes concurrent reapers send once.
    """
    from experiments.broker import BrokerUnavailable, waiting_task_ids

    resend_after = settings.RUN_RESEND_QUEUED_AFTER_SECONDS if resend_after is None else resend_after
    settled = Now() - timedelta(seconds=settings.RUN_RESEND_GRACE_SECONDS)
    candidates = list(
        ExperimentRun.objects.filter(status=RunStatus.QUEUED)
        .filter(Q(pk__in=requeued) | Q(sent_at__lt=settled) | Q(sent_at__isnull=True, created_at__lt=settled))
        .only("pk", "queue", "task_id", "sent_at", "soft_time_limit", "time_limit")
    )
    if not candidates:
        return []
    try:
        waiting = waiting_task_ids({run.queue for run in candidates})
    except BrokerUnavailable as exc:
        log.warning("reaper: the broker is unavailable (%s); %d queued runs wait for it", exc, len(candidates))
        return []
    if waiting is None:  # a broker that cannot be read: fall back to the age of the message
        cutoff = timezone.now() - timedelta(seconds=resend_after)
        lost = [run for run in candidates if run.pk in requeued or not run.sent_at or run.sent_at < cutoff]
    else:
        lost = [run for run in candidates if run.task_id not in waiting]
    resent = []
    for run in lost:
        if ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED, sent_at=run.sent_at).update(
            sent_at=timezone.now()
        ):
            _send(run)
            resent.append(run.pk)
    return resent
