"""A run's page: status, progress, verdict, metrics, charts, artifacts, manifest (the list is in `run_list`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.selectors import run_waiting_for
from experiments.series import series_cursor
from experiments.services import run_can_cancel
from experiments.views.common import run_or_404
from experiments.views.params_text import params_text
from experiments.views.presenters import (
    RunLine,
    criterion_words,
    doc_paragraphs,
    kinds_by_key,
    manifest_rows,
)
from experiments.views.run_page import (
    artifact_groups,
    chart_labels,
    log_lines,
    part_details,
    part_table,
    run_metric_rows,
    series_charts,
    timing_words,
)


def run_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    """/runs/<pk>/: everything about one run; while it is queued or running, runs.js keeps it live."""
    run = run_or_404(pk)
    spec = run.spec
    kind = kinds_by_key().get(run.kind)
    artifacts = run.artifacts_in_order
    figures = [artifact for artifact in artifacts if artifact.artifact_type == "plotly"]
    headline = next((figure for figure in figures if figure.name == run.headline), None)
    context = {
        "run": run,
        "spec": spec,
        "idea": spec.idea,
        "kind": kind,
        "kind_doc": doc_paragraphs(kind.doc) if kind else [],
        "line": RunLine.of(run, spec.criterion),
        "params": params_text(run.params, kind),
        "criterion": criterion_words(spec.criterion),
        "part_table": part_table(run.parts, kind),
        "metric_rows": run_metric_rows(run, kind),
        "charts": series_charts(run, kind),
        "chart_labels": chart_labels(run, kind),
        # Where runs.js's first poll of the embedded series starts (?series_since=, ?series_attempt=).
        "series_cursor": series_cursor(run),
        "headline": headline,
        "parts": part_details(run.parts, figures),
        "other_figures": [f for f in figures if f is not headline and not f.meta.get("part")],
        "artifacts": artifacts,
        "artifact_groups": artifact_groups(artifacts, run.parts),
        "timing": timing_words(run),
        "waiting_for": run_waiting_for(run),
        "log_lines": log_lines(run),
        "log_warnings": sum(entry.get("level") == "warning" for entry in run.log or []),
        "manifest_rows": manifest_rows(run.manifest),
        "can_cancel": run.is_active and run_can_cancel(request.user, run),
        "finished": not run.is_active,
    }
    return render(request, "experiments/run_detail.html", context)
