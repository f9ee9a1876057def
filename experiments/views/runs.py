"""A run's page: status, progress, verdict, metrics, charts, artifacts, manifest (the list is in `run_list`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.services import run_can_cancel
from experiments.views.common import run_or_404
from experiments.views.presenters import (
    RunLine,
    criterion_words,
    doc_paragraphs,
    kinds_by_key,
    manifest_rows,
    metric_rows,
    params_compact,
)


def run_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    """/runs/<pk>/: everything about one run; while it is queued or running, runs.js keeps it live."""
    run = run_or_404(pk)
    spec = run.spec
    kind = kinds_by_key().get(run.kind)
    artifacts = run.artifacts_in_order
    context = {
        "run": run,
        "spec": spec,
        "idea": spec.idea,
        "kind": kind,
        "kind_doc": doc_paragraphs(kind.doc) if kind else [],
        "line": RunLine.of(run, spec.criterion),
        "params": params_compact(run.params),
        "criterion": criterion_words(spec.criterion),
        "metric_rows": metric_rows(run.metrics, kind),
        "series_names": list(run.series),
        "artifacts": artifacts,
        "plotly_artifacts": [artifact for artifact in artifacts if artifact.artifact_type == "plotly"],
        "manifest_rows": manifest_rows(run.manifest),
        "can_cancel": run.is_active and run_can_cancel(request.user, run),
        "finished": not run.is_active,
    }
    return render(request, "experiments/run_detail.html", context)
