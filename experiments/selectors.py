"""Reads of specs, runs, artifacts and datasets, shared by the pages and the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import NotSupportedError
from django.db.models import (
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Model,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now

from experiments.engine.executor import METRIC_NAME
from experiments.engine.registry import Kind, registry
from experiments.models import Artifact, Dataset, ExperimentRun, ExperimentSpec, RunStatus, Verdict, WorkerQueue
from ideas.models import Idea

RUNS_SHOWN_PER_SPEC = 10
# Newest first by when a run finished (a run without a finish time last), then by id. The idea list's
# `latest_verdict` (ideas.selectors) orders the same way, so the list and the idea page name the same run.
LATEST_FINISHED_FIRST = (F("finished_at").desc(nulls_last=True), F("pk").desc())

# --- the list of runs: filters and orderings ---

METRIC_ORDERING = "metric:"
# What a list of runs sorts by, besides `metric:<name>`; each also with a leading "-".
RUN_ORDERINGS = ("created", "duration", "kind", "status", "idea", "user")
SORT_FIELDS = {"kind": "kind", "idea": "spec__idea__title", "user": "created_by__username"}
LIST_DEFERRED = ("series", "summary", "manifest", "parts", "log", "error_traceback")
KIND_MAX = 64
USERNAME_MAX = 150
MAX_ID = 2**63 - 1  # a BigAutoField's largest; larger ids cannot exist (and SQLite cannot compare them)
COMPARE_MIN, COMPARE_MAX = 2, 6


def kind_catalog() -> list[Kind]:
    """Every registered kind, by key."""
    return list(registry)


def spec_list(*, idea_id: int | None = None) -> QuerySet[ExperimentSpec]:
    """Specs (of one idea, or all) as the pages and the API show them.

    Each carries its newest RUNS_SHOWN_PER_SPEC runs (`spec.recent_runs`, newest first), how many
    runs it has (`spec.run_count`) and whether any succeeded (`spec.has_succeeded`), in two queries
    however many runs there are.
    """
    runs_of_spec = ExperimentRun.objects.filter(spec=OuterRef("pk"))
    qs = (
        ExperimentSpec.objects.select_related("idea", "author")
        .annotate(
            run_count=Coalesce(Subquery(runs_of_spec.order_by().values("spec").annotate(n=Count("pk")).values("n")), 0),
            has_succeeded=Exists(runs_of_spec.filter(status=RunStatus.SUCCEEDED)),
        )
        .prefetch_related(
            Prefetch(
                "runs",
                # The idea page and spec lists show status and progress, not the (large) series and manifests.
                queryset=ExperimentRun.objects.select_related("created_by")
                .defer("series", "summary", "manifest", "params", "parts", "log")
                .order_by("-created_at", "-id")[:RUNS_SHOWN_PER_SPEC],
                to_attr="recent_runs",
            )
        )
    )
    if idea_id is not None:
        qs = qs.filter(idea_id=idea_id)
    return qs.order_by("id")


def spec_detail(*, pk: int) -> ExperimentSpec:
    """One spec as `spec_list` shows it; raises ExperimentSpec.DoesNotExist."""
    return spec_list().get(pk=pk)


def spec_get(*, pk: int) -> ExperimentSpec:
    """One spec and its idea, nothing more (to trigger it); raises ExperimentSpec.DoesNotExist."""
    return ExperimentSpec.objects.select_related("idea").get(pk=pk)


@dataclass(frozen=True)
class RunFilters:
    """What a list of runs is narrowed and sorted by; the runs page and /api/runs/ take the same.

    Empty strings and None mean "any". `ordering` is one of RUN_ORDERINGS with an optional
    leading "-" (descending), or `metric:<name>` / `-metric:<name>` for any metric's value;
    empty means newest first.
    """

    kind: str = ""
    status: str = ""
    idea: int | None = None
    spec: int | None = None
    user: str = ""  # a username: who started the run
    ordering: str = ""

    def validate(self) -> None:
        """Raise ValidationError naming each field whose value cannot match anything sensible.

        Ids, kinds and users that do not exist are errors too: a typo should not look like an
        empty list.
        """
        errors: dict[str, str] = {}
        if self.kind and not kind_exists(self.kind):
            errors["kind"] = f"Unknown kind {self.kind[:70]!r}; choose one of {', '.join(registry.keys())}."
        if self.status and self.status not in RunStatus.values:
            choices = ", ".join(RunStatus.values)
            errors["status"] = f"Unknown run status {self.status[:30]!r}; choose one of {choices}."
        if self.idea is not None and not _row_exists(Idea, self.idea):
            errors["idea"] = f"No idea with id {self.idea}."
        if self.spec is not None and not _row_exists(ExperimentSpec, self.spec):
            errors["spec"] = f"No experiment with id {self.spec}."
        users = get_user_model().objects
        if self.user and (len(self.user) > USERNAME_MAX or not users.filter(username=self.user).exists()):
            errors["user"] = f"No user named {self.user[:USERNAME_MAX]!r}."
        try:
            run_ordering_parse(self.ordering)
        except ValueError as error:
            errors["ordering"] = str(error)
        if errors:
            raise ValidationError(errors)


def metric_name_check(name: str) -> str:
    """The name if it can be a metric's (METRIC_NAME), else ValueError saying so."""
    if not METRIC_NAME.fullmatch(name):
        raise ValueError(f"{name[:40]!r} is not a metric name (a letter or _, then up to 99 letters, digits, _ or .).")
    return name


def run_ordering_parse(ordering: str) -> tuple[str, str, bool]:
    """'-metric:loss' -> ('metric', 'loss', True); 'duration' -> ('duration', '', False); '' -> ('created', '', True).

    Raises ValueError naming the choices for anything else.
    """
    if not ordering:
        return "created", "", True
    descending = ordering.startswith("-")
    key = ordering.removeprefix("-")
    if key.startswith(METRIC_ORDERING):
        return "metric", metric_name_check(key.removeprefix(METRIC_ORDERING)), descending
    if key in RUN_ORDERINGS:
        return key, "", descending
    choices = ", ".join(RUN_ORDERINGS)
    raise ValueError(
        f"Unknown ordering {ordering[:40]!r}; choose one of {choices} or {METRIC_ORDERING}<metric name>, "
        "each with a leading - for descending."
    )


def kind_exists(key: str) -> bool:
    """A registered kind, or one that runs recorded before it was retired."""
    return key in registry or (len(key) <= KIND_MAX and ExperimentRun.objects.filter(kind=key).exists())


def _row_exists(model: type[Model], pk: int) -> bool:
    return 1 <= pk <= MAX_ID and model.objects.filter(pk=pk).exists()


class MetricValue(Func):
    """A run's metric `name` as a float: NULL when the run lacks it or its value is not a JSON number.

    Metrics are {name: number | null}, but a value edited by hand could be a string or a boolean,
    which PostgreSQL's cast would refuse (a 500) and SQLite's would read as 0 or 1; the JSON type
    decides on both. `name` is a METRIC_NAME, so it is a key (never an array index) wherever it goes.
    """

    output_field = FloatField()

    def __init__(self, name: str) -> None:
        super().__init__(F("metrics"))
        self.name = name

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Sorting runs by a metric needs PostgreSQL or SQLite.")

    def as_postgresql(self, compiler, connection, **extra):
        metrics, params = compiler.compile(self.source_expressions[0])
        sql = f"CASE WHEN jsonb_typeof({metrics} -> %s) = 'number' THEN ({metrics} ->> %s)::double precision END"
        return sql, (*params, self.name, *params, self.name)

    def as_sqlite(self, compiler, connection, **extra):
        metrics, params = compiler.compile(self.source_expressions[0])
        path = f"$.{json.dumps(self.name)}"  # $."L2.max_score": the whole name is one key
        sql = f"CASE WHEN json_type({metrics}, %s) IN ('integer', 'real') THEN json_extract({metrics}, %s) END"
        return sql, (*params, path, *params, path)


def _run_sort_value(key: str, metric: str):
    if key == "metric":
        return MetricValue(metric)
    if key == "duration":
        return ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    if key == "status":  # in the order a run lives them, not alphabetically
        whens = [When(status=value, then=Value(index)) for index, value in enumerate(RunStatus.values)]
        return Case(*whens, default=Value(len(whens)), output_field=IntegerField())
    return F(SORT_FIELDS[key])


def _runs() -> QuerySet[ExperimentRun]:
    return ExperimentRun.objects.select_related("spec__idea", "created_by").prefetch_related(
        Prefetch("artifacts", queryset=Artifact.objects.order_by("name"))
    )


def verdict_runs() -> QuerySet[ExperimentRun]:
    """Runs whose verdict counts as evidence: succeeded with a verdict, as the status of a hypothesis follows."""
    return ExperimentRun.objects.filter(status=RunStatus.SUCCEEDED).exclude(verdict="")


@dataclass(frozen=True)
class IdeaEvidence:
    """What an idea's experiments say, as its page's header line and the API's idea detail show it.

    Each spec (experiment) counts once, with the verdict of its latest succeeded run that has one:
    replicating a spec replaces its vote rather than adding one, and a later failed, cancelled or
    still running run leaves it standing.
    """

    experiments: int  # the idea's specs
    runs: int  # their runs, in any state
    counts: dict[str, int]  # verdict -> experiments whose latest verdict it is; every verdict, in Verdict's order
    latest: ExperimentRun | None  # the newest of the counted runs; None when no experiment has a verdict

    @property
    def with_verdict(self) -> int:
        return sum(self.counts.values())


def idea_evidence(*, idea_id: int) -> IdeaEvidence:
    """The evidence of one idea's experiments (two queries); see IdeaEvidence for which runs count."""
    totals = ExperimentSpec.objects.filter(idea_id=idea_id).aggregate(
        experiments=Count("pk", distinct=True), runs=Count("runs")
    )
    latest_of_its_spec = verdict_runs().filter(spec=OuterRef("spec")).order_by(*LATEST_FINISHED_FIRST).values("pk")[:1]
    counted = list(
        verdict_runs()
        .filter(spec__idea_id=idea_id, pk=Subquery(latest_of_its_spec))
        .only("pk", "spec_id", "verdict", "finished_at")
        .order_by(*LATEST_FINISHED_FIRST)
    )
    counts = dict.fromkeys(Verdict.values, 0)
    for run in counted:
        counts[run.verdict] = counts.get(run.verdict, 0) + 1
    return IdeaEvidence(
        experiments=totals["experiments"],
        runs=totals["runs"],
        counts=counts,
        latest=counted[0] if counted else None,
    )


def run_list(*, filters: RunFilters | None = None) -> QuerySet[ExperimentRun]:
    """Runs matching `filters` (newest first unless it says otherwise), with spec, idea, user and artifacts.

    Each run is as a list shows it: without its step series, summary, manifest and log, which
    only the run's own page needs. A value that cannot match is a ValidationError naming the field.
    Sorting by a value some runs lack (a metric, a duration) puts those runs last either way.
    """
    filters = filters or RunFilters()
    filters.validate()
    qs = _runs().defer(*LIST_DEFERRED)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.idea is not None:
        qs = qs.filter(spec__idea_id=filters.idea)
    if filters.spec is not None:
        qs = qs.filter(spec_id=filters.spec)
    if filters.user:
        qs = qs.filter(created_by__username=filters.user)
    key, metric, descending = run_ordering_parse(filters.ordering)
    newest = ("-created_at", "-id")
    if key == "created":
        return qs.order_by(*newest) if descending else qs.order_by("created_at", "id")
    value = F("sort_value").desc(nulls_last=True) if descending else F("sort_value").asc(nulls_last=True)
    return qs.alias(sort_value=_run_sort_value(key, metric)).order_by(value, *newest)


def run_get(*, pk: int) -> ExperimentRun:
    """One run with everything it recorded, its spec, idea and artifacts; raises ExperimentRun.DoesNotExist."""
    return _runs().get(pk=pk)


def run_comparison(*, ids: list[int]) -> list[ExperimentRun]:
    """The runs to compare side by side, in the order given, with everything they recorded.

    Two to six distinct runs that exist; anything else is a ValidationError on `ids` that says why.
    """
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise ValidationError({"ids": f"Choose {COMPARE_MIN} to {COMPARE_MAX} runs to compare; got {len(ids)}."})
    repeated = sorted({pk for pk in ids if ids.count(pk) > 1})
    if repeated:
        raise ValidationError({"ids": f"Each run once: {', '.join(map(str, repeated))} appears more than once."})
    found = {run.pk: run for run in _runs().filter(pk__in=[pk for pk in ids if 1 <= pk <= MAX_ID])}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise ValidationError({"ids": f"No run with id {', '.join(map(str, missing))}."})
    return [found[pk] for pk in ids]


def artifact_get(*, run_id: int, name: str) -> Artifact:
    """One artifact of a run; raises Artifact.DoesNotExist."""
    return Artifact.objects.select_related("run").get(run_id=run_id, name=name)


def dataset_list() -> QuerySet[Dataset]:
    """Uploaded datasets, newest first, with their uploaders."""
    return Dataset.objects.select_related("uploaded_by").order_by("-created_at", "-id")


def dataset_get(*, pk: int) -> Dataset:
    """One dataset with its uploader; raises Dataset.DoesNotExist."""
    return dataset_list().get(pk=pk)


# --- workers: whether anyone consumes a run's queue ---


def live_queues() -> set[str]:
    """The queues some worker consumes now (it refreshed its record within WORKER_GONE_AFTER_SECONDS)."""
    fresh = Now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS)
    return set(WorkerQueue.objects.filter(seen_at__gte=fresh).values_list("queue", flat=True).distinct())


def run_waiting_for(run: ExperimentRun, queues: set[str] | None = None) -> str | None:
    """Why a queued run is not starting, when the reason is that no worker consumes its queue; else None.

    `queues` is `live_queues()` when the caller already has it (a list of runs asks once)."""
    if run.status != RunStatus.QUEUED:
        return None
    if run.queue in (live_queues() if queues is None else queues):
        return None
    if run.queue == "gpu":
        return (
            "Waiting for a GPU worker: no worker is consuming the gpu queue. Start one on a machine with a GPU "
            "(make worker QUEUES=gpu); the run starts as soon as it is ready."
        )
    return (
        f"Waiting for a worker: no worker is consuming the {run.queue} queue. Start one "
        f"(make worker QUEUES={run.queue}, or make run for the web server and a worker); "
        "the run starts as soon as it is ready."
    )
