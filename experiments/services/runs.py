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
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection, transaction
from django.db.models import Case, F, Q, When
from django.db.models.functions import Now
from django.utils import timezone

from experiments.engine import ENGINE_VERSION
from experiments.engine.errors import EngineError, RunCancelled
from experiments.engine.executor import execute
from experiments.engine.registry import KindResult
from experiments.engine.runtime import RunContext, environment_versions, resolve_device
from experiments.errors import RunQuotaExceeded
from experiments.models import ACTIVE_RUN_STATUSES, Artifact, ExperimentRun, ExperimentSpec, RunStatus
from experiments.reporting import DatabaseReporter
from experiments.services.evidence import idea_status_follow_verdicts, verdict_for
from experiments.services.specs import kind_get, params_validate, spec_hash
from experiments.storage import run_attempt_dir
from ideas.services import user_can_edit_idea

log = logging.getLogger(__name__)


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
        progress_message="starting",
        error="",
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
            status=status, finished_at=timezone.now(), **fields
        )
    )


@transaction.atomic
def _store_success(run: ExperimentRun, ctx: RunContext, result: KindResult, manifest: dict) -> bool:
    verdict = verdict_for(run.spec.criterion, result.metrics)
    owned = _finish(
        run,
        RunStatus.SUCCEEDED,
        progress=1.0,
        progress_message="done",
        metrics=result.metrics,
        summary=result.summary,
        series={name: list(points) for name, points in ctx.series.items()},
        manifest=manifest,
        verdict=verdict,
    )
    if not owned:
        return False
    root = run_attempt_dir(run.pk, run.attempts)
    base = root.relative_to(root.parents[2])  # runs/<id>/<attempt>
    Artifact.objects.bulk_create(
        Artifact(
            run=run,
            name=rec.name,
            path=str(base / rec.path),
            artifact_type=rec.artifact_type,
            content_type=rec.content_type,
            size=rec.size,
            sha256=rec.sha256,
            meta=rec.meta,
        )
        for rec in ctx.artifacts.values()
    )
    if verdict:
        run.verdict = verdict
        idea_status_follow_verdicts(idea=run.spec.idea, run=run)
    return True


def _refresh_connection() -> None:
    """Drop a broken or too-old database connection (never one inside a transaction: the caller's)."""
    if not connection.in_atomic_block:
        close_old_connections()


def worker_identity(pid: int | None = None) -> str:
    """host:pid of the process running an attempt; the worker's main process matches its children by it."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def run_execute(*, run_id: int, worker: str = "") -> ExperimentRun | None:
    """Claim a queued run and execute it through the engine; store its outcome. None when not claimed.

    Whatever goes wrong after the claim (the spec no longer validates, the kind raises, storing the outcome
    fails), the attempt ends in a final state with the reason, never left `running` for the reaper.
    """
    run = _claim(run_id, worker or worker_identity())
    if run is None:
        return None
    try:
        _execute_claimed(run)
    except Exception as exc:  # the last line of defence: record why, with a fresh connection
        log.exception("run %s failed outside its kind", run.pk)
        _refresh_connection()
        _finish(run, RunStatus.FAILED, error=_describe(exc, run))
    run.refresh_from_db()
    return run


def _describe(exc: BaseException, run: ExperimentRun) -> str:
    if type(exc).__name__ == "SoftTimeLimitExceeded":
        return f"Exceeded the soft time limit of {run.soft_time_limit} s."
    if isinstance(exc, EngineError):
        return str(exc)
    return "".join(traceback.format_exception(exc, limit=-8))


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
    reporter.series = ctx.series
    ExperimentRun.objects.filter(pk=run.pk).update(device=str(device))
    manifest = _manifest(run, kind, device)
    with reporter:
        try:
            result = execute(kind, params, ctx)
        except RunCancelled:
            outcome = None if reporter.lost else {"status": RunStatus.CANCELLED, "progress_message": "cancelled"}
        except Exception as exc:
            outcome = {"status": RunStatus.FAILED, "error": _describe(exc, run)}
        else:
            outcome = "success"
    # A run can last hours: the connection it started with may be long gone.
    _refresh_connection()
    if outcome == "success":
        _store_success(run, ctx, result, manifest)
    elif outcome is not None:
        status = outcome.pop("status")
        _finish(run, status, manifest=manifest, **outcome)


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
        if run.cancel_requested:
            run.status, run.finished_at, run.error = RunStatus.CANCELLED, timezone.now(), reason
        elif run.attempts < run.max_attempts:
            run.status, run.error = RunStatus.QUEUED, f"Attempt {run.attempts} lost: {reason}"
            run.progress_message = "re-queued"
        else:
            run.status, run.finished_at = RunStatus.FAILED, timezone.now()
            run.error = f"{reason} (attempt {run.attempts} of {run.max_attempts}; giving up)."
        run.save(update_fields=["status", "finished_at", "error", "progress_message"])
        return run.status


def run_worker_lost(*, run_id: int, reason: str, worker: str) -> str | None:
    """The process `worker` (host:pid) running this run died; the broker redelivers the message itself."""
    return _requeue_or_fail(run_id, reason=reason, only_if=Q(worker=worker))


def run_time_limit_exceeded(*, run_id: int, seconds: float, worker: str) -> bool:
    """The hard time limit killed the process `worker` (host:pid) running this run."""
    return bool(
        ExperimentRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, worker=worker).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error=f"Exceeded the hard time limit of {seconds:g} s; the worker process was killed.",
        )
    )


@dataclass(frozen=True)
class ReapReport:
    requeued: list[int]
    failed: list[int]
    resent: list[int]


def runs_reap(*, stale_after: float | None = None, resend_after: float | None = None) -> ReapReport:
    """Find runs nobody is working on.

    A running run whose heartbeat is older than `stale_after` seconds (database time) lost its worker:
    it is queued again while attempts remain, else failed with the reason. A queued run whose message
    was sent more than `resend_after` seconds ago (or never, because the broker was down) is sent again;
    the conditional claim makes a duplicate message harmless, and a conditional update of `sent_at`
    makes sure concurrent reapers send it once.
    """
    stale_after = settings.RUN_STALE_AFTER_SECONDS if stale_after is None else stale_after
    resend_after = settings.RUN_RESEND_QUEUED_AFTER_SECONDS if resend_after is None else resend_after
    silent = Q(heartbeat_at__lt=Now() - timedelta(seconds=stale_after))
    requeued, failed, resent = [], [], []
    stale = ExperimentRun.objects.filter(silent, status=RunStatus.RUNNING)
    for run_id, attempts in stale.values_list("pk", "attempts"):
        reason = f"The worker stopped sending heartbeats for more than {stale_after:g} s"
        # Re-checked under the row lock: the heartbeat may have arrived since the query above.
        outcome = _requeue_or_fail(run_id, reason=reason, only_if=silent & Q(attempts=attempts))
        if outcome == RunStatus.QUEUED:
            requeued.append(run_id)
        elif outcome == RunStatus.FAILED:
            failed.append(run_id)
    waited = Now() - timedelta(seconds=resend_after)
    waiting = ExperimentRun.objects.filter(status=RunStatus.QUEUED).filter(
        Q(sent_at__lt=waited) | Q(sent_at__isnull=True, created_at__lt=waited) | Q(pk__in=requeued)
    )
    for run in waiting:
        if ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED, sent_at=run.sent_at).update(
            sent_at=timezone.now()
        ):
            _send(run)
            resent.append(run.pk)
    return ReapReport(requeued=requeued, failed=failed, resent=resent)
