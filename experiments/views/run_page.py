"""What a run's page shows, in the order a researcher reads it: findings, the headline figure, each part's
details, metrics with one row per part, artifacts grouped, the log.

Plain functions over a run and its prefetched artifacts; nothing here queries the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from experiments.engine.registry import Kind
from experiments.engine.runtime import part_metrics
from experiments.models import Artifact, ExperimentRun
from experiments.views.presenters import duration_words, metric_rows, number_text


@dataclass(frozen=True)
class PartTable:
    """Metrics of a composite run: one row per part, one column per metric."""

    columns: list[tuple[str, str]]  # (metric, meaning)
    rows: list[tuple[str, list[str]]]  # (part label, values in column order)


def part_table(parts: list[dict[str, Any]], kind: Kind | None) -> PartTable | None:
    """None for a run without parts. Columns follow the kind's `part_metrics`, then any others."""
    if not parts:
        return None
    meanings = dict(kind.part_metrics) if kind else {}
    present = {name for part in parts for name in part["metrics"]}
    names = [name for name in meanings if name in present] + sorted(present - set(meanings))
    rows = [(part["label"], [number_text(part["metrics"].get(name)) for name in names]) for part in parts]
    return PartTable(columns=[(name, meanings.get(name, "")) for name in names], rows=rows)


def run_metric_rows(run: ExperimentRun, kind: Kind | None) -> list[tuple[str, str, str]]:
    """(name, value, meaning) of the run's own metrics: those its parts gave (`<part>_<name>`) are in the table."""
    from_parts = part_metrics(run.parts).keys()
    return metric_rows({k: v for k, v in (run.metrics or {}).items() if k not in from_parts}, kind)


@dataclass
class CheckpointSet:
    """Checkpoints of one model (a name stem such as `L2-checkpoint-`), sorted by step: shown as one row."""

    stem: str
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def steps(self) -> str:
        first, last = self.artifacts[0].step, self.artifacts[-1].step
        return f"step {first}" if first == last else f"steps {first} to {last}"

    @property
    def size(self) -> int:
        return sum(artifact.size for artifact in self.artifacts)


@dataclass
class ArtifactGroup:
    """The files of one part (or of the run as a whole): files one per row, checkpoints as sets."""

    label: str
    files: list[Artifact] = field(default_factory=list)
    checkpoints: list[CheckpointSet] = field(default_factory=list)


def artifact_groups(artifacts: list[Artifact], parts: list[dict[str, Any]]) -> list[ArtifactGroup]:
    """The run's files first, then each part's, in the part order; `artifacts` in `Artifact.order_key` order."""
    labels = {part["key"]: part["label"] for part in parts}
    groups: dict[str, ArtifactGroup] = {"": ArtifactGroup(label="This run")}
    for key, label in labels.items():
        groups[key] = ArtifactGroup(label=label)
    for artifact in artifacts:
        key = artifact.meta.get("part", "") if isinstance(artifact.meta, dict) else ""
        group = groups.setdefault(key, ArtifactGroup(label=key))
        if artifact.step is None:
            group.files.append(artifact)
            continue
        stem = artifact.name.removesuffix(str(artifact.step))
        if not group.checkpoints or group.checkpoints[-1].stem != stem:
            group.checkpoints.append(CheckpointSet(stem=stem))
        group.checkpoints[-1].artifacts.append(artifact)
    return [group for group in groups.values() if group.files or group.checkpoints]


@dataclass(frozen=True)
class PartDetails:
    """One part's section: its findings and the figures it saved."""

    key: str
    label: str
    findings: list[str]
    figures: list[Artifact]


def part_details(parts: list[dict[str, Any]], figures: list[Artifact]) -> list[PartDetails]:
    by_part: dict[str, list[Artifact]] = {}
    for figure in figures:
        by_part.setdefault(figure.meta.get("part", ""), []).append(figure)
    return [
        PartDetails(
            key=part["key"], label=part["label"], findings=part["findings"], figures=by_part.get(part["key"], [])
        )
        for part in parts
    ]


def chart_labels(run: ExperimentRun, kind: Kind | None) -> dict[str, Any]:
    """What runs.js needs to title the step charts in words and overlay the parts' series: the kind's words for
    each series and each finished part's label."""
    return {
        "series": dict(kind.series) if kind else {},
        "parts": {part["key"]: part["label"] for part in run.parts},
    }


def series_charts(run: ExperimentRun, kind: Kind | None) -> list[tuple[str, str]]:
    """(metric, title in words) of each step chart: a part's series `<part>/<metric>` share their metric's chart
    (runs.js draws a line per part), in the order the series first appeared."""
    words = dict(kind.series) if kind else {}
    metrics = dict.fromkeys(name.split("/", 1)[-1] for name in run.series or {})
    return [(metric, (words.get(metric) or metric.replace("_", " ")).capitalize()) for metric in metrics]


def timing_words(run: ExperimentRun) -> dict[str, str]:
    """Elapsed time and time left of a running run; the duration of a finished one (runs.js keeps them current)."""
    return {
        "elapsed": duration_words(run.elapsed_seconds),
        "left": duration_words(run.seconds_left),
        "duration": duration_words(run.duration_seconds),
    }


def log_lines(run: ExperimentRun) -> list[dict[str, Any]]:
    """The log with each line's time as words ('12.3 s'), newest last."""
    return [{**entry, "time": duration_words(entry.get("t"))} for entry in run.log or []]
