"""/runs/compare/?ids=3,5,8: two to six runs side by side.

The runs as columns (kind, status, verdict, seed, duration), the params that differ between
them (dotted paths into nested params, with a count of those that do not), one row per
metric, and each step series drawn once with a line per run (static/js/run_compare.js, from
data embedded with json_script). All runs are public, as on their own pages, so anyone may
compare any of them. Bad, repeated or unknown ids, or too few or too many, are a 400 page
that says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from experiments.models import ExperimentRun
from experiments.selectors import run_comparison
from experiments.views.presenters import duration_words, kinds_by_key, number_text
from pages.shortcuts import refused

NOT_SET = object()  # a param path one run has and another does not


@dataclass(frozen=True)
class RunColumn:
    """One run as a column: the run, its kind's title and how long it took."""

    run: ExperimentRun
    kind_title: str
    duration: str


@dataclass(frozen=True)
class CompareRow:
    """One param or metric: its name and its value in each run, as text."""

    name: str
    values: list[str]


def parse_ids(values: list[str]) -> list[int]:
    """['3,5', '8'] -> [3, 5, 8]: `ids` comma-separated, repeated (a plain form's checkboxes) or both."""
    ids = []
    for part in ",".join(values).split(","):
        part = part.strip()
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or len(part) > 18:  # "²".isdigit() too
            raise ValidationError({"ids": f"ids must be run numbers separated by commas; got {part[:20]!r}."})
        ids.append(int(part))
    return ids


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'model': {'n_layers': 2}, 'steps': 5} -> {'model.n_layers': 2, 'steps': 5}; lists stay whole."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value} if prefix else {}


def cell_text(value: Any) -> str:
    if value is NOT_SET:
        return "not set"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, str):
        return value
    return number_text(value)


def _same_key(value: Any) -> tuple[str, Any]:
    """Values with equal keys are the same param: 1 and 1.0 are, 1 and "1" or 1 and true are not."""
    if value is NOT_SET:
        return ("not set", None)
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("json", json.dumps(value, sort_keys=True))


def param_rows(runs: list[ExperimentRun]) -> tuple[list[CompareRow], list[CompareRow]]:
    """(rows that differ, rows that are the same in every run) of the runs' flattened params."""
    flat = [flatten(run.params or {}) for run in runs]
    paths = list(dict.fromkeys(path for params in flat for path in params))
    differ, same = [], []
    for path in paths:
        values = [params.get(path, NOT_SET) for params in flat]
        row = CompareRow(path, [cell_text(value) for value in values])
        (differ if len({_same_key(value) for value in values}) > 1 else same).append(row)
    return differ, same


def metric_rows(runs: list[ExperimentRun]) -> list[CompareRow]:
    """One row per metric any run reported: in the order their kinds declare them, then the rest by name."""
    kinds = kinds_by_key()
    declared = [name for run in runs if run.kind in kinds for name in kinds[run.kind].metrics]
    reported = {name for run in runs for name in (run.metrics or {})}
    names = [name for name in dict.fromkeys(declared) if name in reported] + sorted(reported - set(declared))
    return [
        CompareRow(name, [number_text(run.metrics[name]) if name in (run.metrics or {}) else "" for run in runs])
        for name in names
    ]


def overlaid_series(runs: list[ExperimentRun]) -> list[dict[str, Any]]:
    """[{name, lines: [{run, label, points}]}]: each series any run reported, with a line for each run that has it."""
    names = list(dict.fromkeys(name for run in runs for name in (run.series or {})))
    return [
        {
            "name": name,
            "lines": [
                {"run": run.pk, "label": f"Run {run.pk}", "points": run.series[name]}
                for run in runs
                if name in (run.series or {})
            ],
        }
        for name in names
    ]


def run_compare_page(request: HttpRequest) -> HttpResponse:
    """/runs/compare/?ids=: the runs' params that differ, their metrics and their step series overlaid."""
    try:
        runs = run_comparison(ids=parse_ids(request.GET.getlist("ids")))
    except ValidationError as error:
        message = " ".join(error.message_dict["ids"])
        return refused(request, message, status=400, back=reverse("run-list"))
    differ, same = param_rows(runs)
    series = overlaid_series(runs)
    kinds = kinds_by_key()
    context = {
        "columns": [
            RunColumn(
                run=run,
                kind_title=kinds[run.kind].title if run.kind in kinds else run.kind,
                duration=duration_words(run.duration_seconds),
            )
            for run in runs
        ],
        "params_differ": differ,
        "params_same": same,
        "metric_rows": metric_rows(runs),
        "series": series,
        "series_names": [entry["name"] for entry in series],
    }
    return render(request, "experiments/run_compare.html", context)
