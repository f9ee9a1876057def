"""What the pages show of specs and runs, in words: criteria, params, durations, metric values.

Small functions and dataclasses over rows a selector already loaded; nothing here
queries the database, so a page costs the same few queries however many specs
and runs it shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.timesince import timesince

from experiments.engine.errors import InvalidParams
from experiments.engine.registry import Kind
from experiments.forms import COMPARATOR_SYMBOLS
from experiments.models import ExperimentRun, ExperimentSpec, RunStatus
from experiments.selectors import kind_catalog, spec_list
from experiments.views.params_text import params_text

FINDINGS_SHOWN = 5  # a spec card lists at most this many of its latest result's findings


def kinds_by_key() -> dict[str, Kind]:
    return {kind.key: kind for kind in kind_catalog()}


def doc_paragraphs(doc: str) -> list[str]:
    """A kind's docstring as paragraphs, each with its wrapped lines joined."""
    return [" ".join(block.split()) for block in doc.split("\n\n") if block.strip()]


def number_text(value: Any) -> str:
    """5 -> '5', 5.0 -> '5', 0.1234567 -> '0.123457', None -> '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def criterion_words(criterion: dict[str, Any] | None) -> str:
    """'supports the hypothesis if steps_completed ≥ 5, else refutes'; '' without a criterion."""
    if not criterion:
        return ""
    symbol = COMPARATOR_SYMBOLS.get(criterion["comparator"], criterion["comparator"])
    threshold = number_text(criterion["threshold"])
    text = f"{criterion['if_met']} the hypothesis if {criterion['metric']} {symbol} {threshold}"
    if criterion.get("otherwise"):
        text += f", else {criterion['otherwise']}"
    return text


def duration_words(seconds: float | None) -> str:
    """0.42 -> '420 ms', 12.3 -> '12.3 s', 185 -> '3 min 5 s', 7300 -> '2 h 1 min'; '' when unknown."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def ago_words(moment: datetime) -> str:
    """'just now' within a minute, else '3 minutes ago'."""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@dataclass(frozen=True)
class RunLine:
    """One run as a line of a list: the run, how long it took, and the value its criterion looks at."""

    run: ExperimentRun
    duration: str
    headline: str  # 'steps_completed = 5', or ''

    @property
    def queued_ago(self) -> str:
        return ago_words(self.run.created_at)

    @property
    def error_line(self) -> str:
        """The last line of the error: for a traceback, the exception and its message."""
        lines = [line.strip() for line in self.run.error.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    @classmethod
    def of(cls, run: ExperimentRun, criterion: dict[str, Any] | None = None) -> RunLine:
        headline = ""
        if criterion and criterion.get("metric") in (run.metrics or {}):
            headline = f"{criterion['metric']} = {number_text(run.metrics[criterion['metric']])}"
        return cls(run=run, duration=duration_words(run.duration_seconds), headline=headline)


@dataclass(frozen=True)
class LatestResult:
    """A spec's latest finished run that has results, as its card shows it: what it found, its verdict.

    Results are a succeeded run's, or a partial one's (cancelled or failed after some parts finished);
    a run that failed with nothing kept shows in the run lines, with its error, and not here.
    """

    run: ExperimentRun
    findings: list[str]  # the first FINDINGS_SHOWN
    more_findings: int  # how many more the run page shows

    @classmethod
    def of(cls, runs: list[ExperimentRun]) -> LatestResult | None:
        """From a spec's loaded runs (`spec.recent_runs`): the one that finished last, among those with results."""
        with_results = [run for run in runs if run.status == RunStatus.SUCCEEDED or run.partial]
        if not with_results:
            return None
        run = max(
            with_results, key=lambda run: (run.finished_at is not None, run.finished_at or run.created_at, run.pk)
        )
        findings = [str(line) for line in run.findings] if isinstance(run.findings, list) else []
        return cls(run=run, findings=findings[:FINDINGS_SHOWN], more_findings=max(0, len(findings) - FINDINGS_SHOWN))


@dataclass(frozen=True)
class SpecCard:
    """One spec on its idea's page, with its newest runs."""

    spec: ExperimentSpec
    kind: Kind | None  # None when the kind is no longer registered
    params: list[str]
    criterion: str
    runs: list[RunLine]
    total_runs: int
    has_succeeded: bool
    latest: LatestResult | None = None  # shown above the run lines: findings, verdict, partial or not
    needs: tuple[str, ...] = ()  # what must be supplied before it can run here (spec_needs)

    @property
    def kind_title(self) -> str:
        return self.kind.title if self.kind else f"{self.spec.kind} (no longer available)"

    @property
    def more_runs(self) -> int:
        return self.total_runs - len(self.runs)


def spec_cards(*, idea_id: int) -> list[SpecCard]:
    """The idea page's Experiments section: each spec of the idea with its newest runs (two queries)."""
    kinds = kinds_by_key()
    cards = []
    for spec in spec_list(idea_id=idea_id):
        cards.append(
            SpecCard(
                spec=spec,
                kind=kinds.get(spec.kind),
                params=params_text(spec.params, kinds.get(spec.kind)),
                criterion=criterion_words(spec.criterion),
                runs=[RunLine.of(run, spec.criterion) for run in spec.recent_runs],
                total_runs=spec.run_count,
                has_succeeded=spec.has_succeeded,
                latest=LatestResult.of(spec.recent_runs),
                needs=spec_needs(spec, kinds.get(spec.kind)),
            )
        )
    return cards


def _pretrained_folders(value: Any) -> list[str]:
    """The folder paths of the pretrained models a spec's params name (not Hugging Face cache names)."""
    if isinstance(value, dict):
        name = value.get("name")
        own = [name] if value.get("source") == "pretrained" and isinstance(name, str) and name.startswith("/") else []
        return own + [folder for item in value.values() for folder in _pretrained_folders(item)]
    if isinstance(value, list):
        return [folder for item in value for folder in _pretrained_folders(item)]
    return []


def spec_needs(spec: ExperimentSpec, kind: Kind | None) -> tuple[str, ...]:
    """What the spec still needs before it can run, in words: what its kind says is missing (a request set to
    upload), and each pretrained model folder it names that is not on this machine, with what to put there."""
    notes = []
    if kind is not None and kind.needs is not None:
        try:
            notes += list(kind.needs(kind.parse_params(spec.params)).values())
        except InvalidParams:
            pass  # the run button reports invalid params
    for folder in dict.fromkeys(_pretrained_folders(spec.params)):
        if not (Path(folder) / "config.json").is_file():
            notes.append(
                f"It reads the pretrained model folder {folder}, which is not on this machine. Put a Hugging Face "
                "causal language model there (config.json, the tokenizer files and the weights), on the web machine "
                "and on every worker that runs it: for example GPT-2 small, downloaded on a machine with internet "
                f"with `huggingface-cli download gpt2 --local-dir {folder}` and copied over (docs: README, "
                "'Behavioural evaluations')."
            )
    return tuple(notes)


def metric_rows(metrics: dict[str, Any], kind: Kind | None) -> list[tuple[str, str, str]]:
    """(name, value, meaning) for each metric, in the order the kind declares them, then any others."""
    meanings = dict(kind.metrics) if kind else {}
    names = [name for name in meanings if name in metrics] + sorted(set(metrics) - set(meanings))
    return [(name, number_text(metrics[name]), meanings.get(name, "")) for name in names]


MANIFEST_LABELS = {
    "spec_hash": "Spec hash",
    "seed": "Seed",
    "kind": "Kind",
    "kind_version": "Kind version",
    "engine_version": "Engine version",
    "git_commit": "Git commit",
    "device": "Device",
    "worker": "Worker",
    "attempt": "Attempt",
    "versions": "Package versions",
    "params": "Params",
}


def manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(label, text, preformatted) for each entry of a reproducibility manifest, known keys first."""
    keys = [key for key in MANIFEST_LABELS if key in manifest] + sorted(set(manifest) - set(MANIFEST_LABELS))
    rows = []
    for key in keys:
        value = manifest[key]
        label = MANIFEST_LABELS.get(key, key.replace("_", " ").capitalize())
        if key == "versions" and isinstance(value, dict):
            rows.append((label, " · ".join(f"{name} {version}" for name, version in value.items()), False))
        elif isinstance(value, dict | list):
            rows.append((label, json.dumps(value, indent=2, sort_keys=True), True))
        else:
            rows.append((label, number_text(value) if value not in ("", None) else "—", False))
    return rows
