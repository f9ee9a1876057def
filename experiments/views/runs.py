"""A run's page (status, progress, verdict, metrics, charts, artifacts, manifest) and the list of runs."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.models import RunStatus
from experiments.selectors import run_list
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
from pages.shortcuts import error_messages

RUNS_PAGE_SIZE = 25
LIST_FILTERS = ("status", "spec", "idea")


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
        "headline": headline,
        "parts": part_details(run.parts, figures),
        "other_figures": [f for f in figures if f is not headline and not f.meta.get("part")],
        "artifacts": artifacts,
        "artifact_groups": artifact_groups(artifacts, run.parts),
        "timing": timing_words(run),
        "log_lines": log_lines(run),
        "log_warnings": sum(entry.get("level") == "warning" for entry in run.log or []),
        "manifest_rows": manifest_rows(run.manifest),
        "can_cancel": run.is_active and run_can_cancel(request.user, run),
        "finished": not run.is_active,
    }
    return render(request, "experiments/run_detail.html", context)


def run_list_page(request: HttpRequest) -> HttpResponse:
    """/runs/?status=&spec=&idea=: every run, newest first, a page at a time. Bad filters are a 400 that says why."""
    chosen = {name: request.GET.get(name, "").strip() for name in LIST_FILTERS}
    context = {"chosen": chosen, "statuses": RunStatus.choices}
    try:
        ids = {name: _id_or_none(name, chosen[name]) for name in ("spec", "idea")}
        runs = run_list(status=chosen["status"], spec_id=ids["spec"], idea_id=ids["idea"])
    except ValidationError as error:
        context["filter_errors"] = error_messages(error)
        return render(request, "experiments/run_list.html", context, status=400)
    page = Paginator(runs, RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
    context.update(
        page=page,
        lines=[RunLine.of(run, run.spec.criterion) for run in page.object_list],
        page_range=page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        query_without_page=_query_without_page(request),
    )
    return render(request, "experiments/run_list.html", context)


def _id_or_none(name: str, raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise ValidationError({name: f"{name} must be a number (a record id); got {raw[:20]!r}."})
    return int(raw)


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
