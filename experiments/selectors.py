"""Reads of specs, runs, artifacts and datasets, shared by the pages and the API."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, F, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from experiments.engine.registry import Kind, registry
from experiments.models import Artifact, Dataset, ExperimentRun, ExperimentSpec, RunStatus, Verdict

RUNS_SHOWN_PER_SPEC = 10
# Newest first by when a run finished (a run without a finish time last), then by id. The idea list's
# `latest_verdict` (ideas.selectors) orders the same way, so the list and the idea page name the same run.
LATEST_FINISHED_FIRST = (F("finished_at").desc(nulls_last=True), F("pk").desc())


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


def run_list(*, spec_id: int | None = None, idea_id: int | None = None, status: str = "") -> QuerySet[ExperimentRun]:
    """Runs newest first, with their spec, idea and artifacts; unknown status is a ValidationError."""
    if status and status not in RunStatus.values:
        choices = ", ".join(RunStatus.values)
        raise ValidationError({"status": f"Unknown run status {status!r}; choose one of {choices}."})
    qs = ExperimentRun.objects.select_related("spec__idea", "created_by").prefetch_related(
        Prefetch("artifacts", queryset=Artifact.objects.order_by("name"))
    )
    if spec_id is not None:
        qs = qs.filter(spec_id=spec_id)
    if idea_id is not None:
        qs = qs.filter(spec__idea_id=idea_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def run_get(*, pk: int) -> ExperimentRun:
    """One run with its spec, idea and artifacts; raises ExperimentRun.DoesNotExist."""
    return run_list().get(pk=pk)


def artifact_get(*, run_id: int, name: str) -> Artifact:
    """One artifact of a run; raises Artifact.DoesNotExist."""
    return Artifact.objects.select_related("run").get(run_id=run_id, name=name)


def dataset_list() -> QuerySet[Dataset]:
    """Uploaded datasets, newest first, with their uploaders."""
    return Dataset.objects.select_related("uploaded_by").order_by("-created_at", "-id")


def dataset_get(*, pk: int) -> Dataset:
    """One dataset with its uploader; raises Dataset.DoesNotExist."""
    return dataset_list().get(pk=pk)
