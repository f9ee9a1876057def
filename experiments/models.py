"""Experiment specs attached to ideas, their runs, the files runs write, and uploaded datasets (texts, prompt sets).

The lifecycle of a run lives in `experiments.services`; these models hold
fields, choices and constraints only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Comparator(models.TextChoices):
    GE = ">=", "at least"
    GT = ">", "more than"
    LE = "<=", "at most"
    LT = "<", "less than"


class Verdict(models.TextChoices):
    SUPPORTS = "supports", "supports"
    REFUTES = "refutes", "refutes"
    INCONCLUSIVE = "inconclusive", "inconclusive"


class ExperimentSpec(models.Model):
    """A runnable experiment for an idea: a registered kind, its params, a seed and an optional criterion.

    `criterion` is pre-registered evidence: {"metric", "comparator", "threshold",
    "if_met", "otherwise"}, where the last two are verdicts.
    """

    idea = models.ForeignKey("ideas.Idea", on_delete=models.CASCADE, related_name="experiment_specs")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=64, db_index=True)
    params = models.JSONField(default=dict)
    seed = models.PositiveIntegerField(default=0)
    criterion = models.JSONField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["idea_id", "id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.kind})"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FINISHED_RUN_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class ExperimentRun(models.Model):
    """One execution of a spec (see DESIGN.md, "Data flow of a run")."""

    spec = models.ForeignKey(ExperimentSpec, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(max_length=64)
    params = models.JSONField(default=dict, help_text="The normalized params this run used.")
    seed = models.PositiveIntegerField(default=0)
    spec_hash = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    forced = models.BooleanField(default=False, help_text="A replication asked for despite a cached result.")
    queue = models.CharField(max_length=32, default="cpu")
    soft_time_limit = models.PositiveIntegerField(default=3600)
    time_limit = models.PositiveIntegerField(default=3660)

    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=32, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the task message was last sent.")

    metrics = models.JSONField(default=dict, blank=True)
    series = models.JSONField(default=dict, blank=True, help_text="{metric: [[step, value], ...]}")
    summary = models.JSONField(default=dict, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    findings = models.JSONField(
        default=list, blank=True, help_text="What the run found, one sentence each, built from its numbers."
    )
    headline = models.CharField(max_length=100, blank=True, help_text="The artifact name of its headline figure.")
    parts = models.JSONField(
        default=list,
        blank=True,
        help_text="A composite kind's finished parts, in order: "
        "[{key, label, metrics, findings, artifacts}]; written as each part finishes.",
    )
    partial = models.BooleanField(
        default=False, help_text="Cancelled or failed after some parts finished: their results are kept."
    )
    log = models.JSONField(
        default=list, blank=True, help_text="What the kind reported: [{t: seconds, level, message}]."
    )
    estimated_finish_at = models.DateTimeField(
        null=True, blank=True, help_text="While running: when it should finish at its recent pace."
    )
    error = models.TextField(blank=True, help_text="Why it failed, in words anyone may read.")
    error_traceback = models.TextField(blank=True, help_text="The failure's traceback: for staff (admin) only.")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__gte=0, progress__lte=1), name="run_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of spec {self.spec_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("run-detail", kwargs={"pk": self.pk})

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def elapsed_seconds(self) -> float | None:
        """How long this attempt has run (its duration once finished); None before it starts."""
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def seconds_left(self) -> float | None:
        """While running: the estimated time left at the run's recent pace; None when there is no estimate."""
        if self.status != RunStatus.RUNNING or self.estimated_finish_at is None:
            return None
        return max(0.0, (self.estimated_finish_at - timezone.now()).total_seconds())

    @property
    def artifacts_in_order(self) -> list[Artifact]:
        """The run's artifacts as the run page and the API list them (see `Artifact.order_key`); uses the
        prefetched artifacts when there are some."""
        return sorted(self.artifacts.all(), key=Artifact.order_key)


class Artifact(models.Model):
    """A file a run wrote, under ARTIFACT_ROOT/runs/<run id>/."""

    run = models.ForeignKey(ExperimentRun, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=100)
    path = models.CharField(max_length=300, help_text="Relative to the run's artifact folder.")
    artifact_type = models.CharField(max_length=16)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="artifact_unique_name_per_run")]

    def __str__(self) -> str:
        return f"{self.name} (run {self.run_id})"

    @property
    def step(self) -> int | None:
        """The training step a checkpoint was saved at (the engine records it in `meta`); None otherwise."""
        step = self.meta.get("step") if self.artifact_type == "checkpoint" and isinstance(self.meta, dict) else None
        return step if isinstance(step, int) and not isinstance(step, bool) else None

    def order_key(self) -> tuple:
        """Other artifacts by name first, then checkpoints by step (each name prefix, such as a model's
        `L2-`, on its own), so checkpoint-12 comes before checkpoint-106, not after it as in text."""
        step = self.step
        if step is None:
            return (0, self.name, 0, "")
        stem = self.name.removesuffix(str(step))
        return (1, stem, step, self.name)


class DatasetFormat(models.TextChoices):
    TEXT = "text", "Text corpus"
    JSONL = "jsonl", "Prompt set (JSONL)"
    CSV = "csv", "Prompt set (CSV)"


class Dataset(models.Model):
    """An uploaded dataset that kinds read by reference: a UTF-8 text corpus (`{"source": "text_corpus",
    "dataset": <id>}`) or a prompt set of records uploaded as JSONL or CSV (`{"source": "prompt_set",
    "dataset": <id>}`).

    The file lives at ARTIFACT_ROOT/`path`: datasets/<id>/corpus.txt for a corpus (the engine caches its
    tokenizations beside it), datasets/<id>/items.jsonl for a prompt set (its records normalized: one JSON
    object of strings a line). `size`, `sha256`, `n_characters` and `n_lines` describe the uploaded bytes.
    Rows and files are made and removed together by `experiments.services.datasets`.
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's own name.")
    format = models.CharField(max_length=8, choices=DatasetFormat.choices, default=DatasetFormat.TEXT)
    fields = models.JSONField(
        default=list, blank=True, help_text="A prompt set's declared fields, present in every record; [] for text."
    )
    n_records = models.PositiveIntegerField(null=True, blank=True, help_text="A prompt set's records; null for text.")
    path = models.CharField(
        max_length=300, help_text="Relative to ARTIFACT_ROOT: datasets/<id>/corpus.txt or datasets/<id>/items.jsonl."
    )
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    sha256 = models.CharField(max_length=64)
    n_characters = models.PositiveBigIntegerField()
    n_lines = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (dataset {self.pk})"

    @property
    def is_prompt_set(self) -> bool:
        return self.format != DatasetFormat.TEXT

    @property
    def reference(self) -> dict[str, object]:
        """What a spec's params name to train or evaluate on this dataset."""
        return {"source": "prompt_set" if self.is_prompt_set else "text_corpus", "dataset": self.pk}


class WorkerQueue(models.Model):
    """A Celery worker consuming a queue, as the worker last said so.

    Each worker writes its rows when it is ready and refreshes `seen_at` (database time) every
    WORKER_PRESENCE_SECONDS; it deletes them when it shuts down. A row older than WORKER_GONE_AFTER_SECONDS is a
    worker that died. A queued run whose queue has no fresh row is waiting for a worker nobody started.
    """

    worker = models.CharField(max_length=200, help_text="The worker's node name (celery@host).")
    queue = models.CharField(max_length=32)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "queue"], name="worker_queue_unique")]
        indexes = [models.Index(fields=["queue", "seen_at"], name="worker_queue_seen")]

    def __str__(self) -> str:
        return f"{self.worker} on {self.queue}"


class WorkerPresence(models.Model):
    """One Celery worker as it last described itself: where it runs, how many runs at once, torch threads.

    Written with its `WorkerQueue` rows by the same presence thread (`experiments.services.workers`), read by
    the staff page "Workers and queues" and /metrics. `pool_pids` are its pool processes: a running run's
    `worker` (host:pid of the process that claimed it) names one of them, or the main process (solo pool).
    """

    worker = models.CharField(max_length=200, unique=True, help_text="The worker's node name (celery@host).")
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField(help_text="The worker's main process.")
    pool_pids = models.JSONField(default=list, blank=True, help_text="Its pool processes, as last seen.")
    queues = models.JSONField(default=list, blank=True)
    concurrency = models.PositiveIntegerField(default=1)
    torch_threads = models.PositiveIntegerField(default=1, help_text="Torch threads in each of its run processes.")
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["seen_at"], name="worker_presence_seen")]

    def __str__(self) -> str:
        return self.worker

    @property
    def identities(self) -> set[str]:
        """The host:pid values its runs carry in `ExperimentRun.worker`."""
        return {f"{self.host}:{pid}" for pid in [self.pid, *self.pool_pids]}
