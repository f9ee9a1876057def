"""/runs/: every run, filtered, sorted and a page at a time, with checkboxes to compare a few side by side.

The filters and orderings are `RunFilters`, the same that /api/runs/ takes, read by the
same selector. Filtered to one kind, the table shows that kind's metrics as columns (its
first few as the kind declares them, or those `columns=` names); otherwise each run's
criterion value, as on an idea's page. Bad filter values are a 400 that names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse

from experiments.engine.registry import Kind
from experiments.models import ExperimentRun, RunStatus
from experiments.selectors import (
    COMPARE_MAX,
    COMPARE_MIN,
    METRIC_ORDERING,
    RunFilters,
    metric_name_check,
    run_list,
    run_ordering_parse,
)
from experiments.views.presenters import RunLine, kinds_by_key, number_text

RUNS_PAGE_SIZE = 25
TEXT_FILTERS = ("kind", "status", "user", "ordering")
ID_FILTERS = ("idea", "spec")
DEFAULT_COLUMNS = 6  # a kind's first metrics shown when `columns=` names none
MAX_COLUMNS = 12
FILTER_LABELS = {
    "kind": "Kind",
    "status": "Status",
    "idea": "Idea",
    "spec": "Experiment",
    "user": "Started by",
    "ordering": "Sort",
    "columns": "Columns",
}
# The orderings the sort menu offers; column headers and `ordering=` reach the rest (any metric).
SORTS = (
    ("-created", "Newest"),
    ("created", "Oldest"),
    ("-duration", "Longest"),
    ("duration", "Shortest"),
    ("status", "Status"),
    ("kind", "Kind"),
    ("idea", "Idea"),
    ("user", "Started by"),
)


@dataclass(frozen=True)
class SortHeader:
    """A sortable column header: where clicking it leads, and how the list is sorted by it now."""

    url: str
    direction: str  # "ascending", "descending" or "" (not sorted by this column)

    @property
    def arrow(self) -> str:
        return {"ascending": "↑", "descending": "↓"}.get(self.direction, "")


@dataclass(frozen=True)
class MetricColumn:
    name: str
    meaning: str
    sort: SortHeader


@dataclass(frozen=True)
class RunRow:
    """One run in the table: its line (status, duration, criterion value) and its value in each metric column."""

    line: RunLine
    values: list[str]


def filters_from_query(query: QueryDict) -> RunFilters:
    """The page's query as `RunFilters`; an id that is not a number is a ValidationError naming it
    (with whatever else is wrong with the other filters)."""
    errors = {}
    ids: dict[str, int | None] = {}
    for name in ID_FILTERS:
        raw = query.get(name, "").strip()
        ids[name] = None
        if raw and (not (raw.isascii() and raw.isdigit()) or len(raw) > 18):  # "²".isdigit() too
            errors[name] = [f"{name} must be a number (a record id); got {raw[:20]!r}."]
        elif raw:
            ids[name] = int(raw)
    filters = RunFilters(**{name: query.get(name, "").strip() for name in TEXT_FILTERS}, **ids)
    if errors:
        try:
            filters.validate()
        except ValidationError as error:
            errors |= error.message_dict
        raise ValidationError(errors)
    return filters


def chosen_columns(query: QueryDict) -> list[str]:
    """The metric names `columns=` asks for (comma-separated or repeated), in order, each once."""
    names: list[str] = []
    for value in query.getlist("columns"):
        names += [name.strip() for name in value.split(",") if name.strip()]
    names = list(dict.fromkeys(names))
    if len(names) > MAX_COLUMNS:
        raise ValidationError({"columns": f"At most {MAX_COLUMNS} columns; got {len(names)}."})
    try:
        return [metric_name_check(name) for name in names]
    except ValueError as error:
        raise ValidationError({"columns": str(error)}) from None


def metric_columns(kind: Kind | None, chosen: list[str]) -> list[tuple[str, str]]:
    """(name, meaning) of each metric column: those chosen, else the kind's first few, else none."""
    meanings = dict(kind.metrics) if kind else {}
    names = chosen or list(meanings)[:DEFAULT_COLUMNS]
    return [(name, meanings.get(name, "")) for name in names]


def sort_header(query: QueryDict, current: str, key: str, *, descending_first: bool) -> SortHeader:
    """The header of a column sorted by `key`: clicking it sorts by it, or reverses the sort when it is the one."""
    if current == key:
        direction, target = "ascending", f"-{key}"
    elif current == f"-{key}":
        direction, target = "descending", key
    else:
        direction, target = "", f"-{key}" if descending_first else key
    return SortHeader(url=_url_with(query, ordering=target), direction=direction)


def run_list_page(request: HttpRequest) -> HttpResponse:
    """/runs/?kind=&status=&idea=&spec=&user=&ordering=&columns=&page=: the runs as a sortable, comparable table."""
    query = request.GET
    kinds = kinds_by_key()
    context = {
        "query": {name: query.get(name, "").strip() for name in (*TEXT_FILTERS, *ID_FILTERS)},
        "kinds": list(kinds.values()),
        "statuses": RunStatus.choices,
        "sorts": SORTS,
        "compare_min": COMPARE_MIN,
        "compare_max": COMPARE_MAX,
    }
    try:
        filters = filters_from_query(query)
        chosen = chosen_columns(query)
        runs = run_list(filters=filters)
    except ValidationError as error:
        context["filter_errors"] = [
            (FILTER_LABELS.get(field, field), message)
            for field, messages in error.message_dict.items()
            for message in messages
        ]
        return render(request, "experiments/run_list.html", context, status=400)

    current = filters.ordering or "-created"
    kind = kinds.get(filters.kind) if filters.kind else None
    columns = [
        MetricColumn(name, meaning, sort_header(query, current, METRIC_ORDERING + name, descending_first=True))
        for name, meaning in metric_columns(kind, chosen)
    ]
    page = Paginator(runs, RUNS_PAGE_SIZE).get_page(query.get("page"))
    context.update(
        filters=filters,
        kind=kind,
        columns=columns,
        chosen_columns={column.name for column in columns},
        rows=[_row(run, columns) for run in page.object_list],
        page=page,
        page_range=page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        current_sort=current,
        other_sort_label=_other_sort_label(filters.ordering),
        headers={
            "status": sort_header(query, current, "status", descending_first=False),
            "created": sort_header(query, current, "created", descending_first=True),
            "duration": sort_header(query, current, "duration", descending_first=True),
        },
        active_filters=_active_filters(query, filters),
        compare_url=reverse("run-compare"),
    )
    return render(request, "experiments/run_list.html", context)


def _other_sort_label(ordering: str) -> str:
    """The sort menu's label for an ordering it does not offer itself (a column header's: any metric, or a
    reversed one such as '-status'), so Apply keeps it: 'final_loss, highest first', 'Status, reversed'; ''
    for the menu's own entries."""
    if not ordering or ordering in dict(SORTS):
        return ""
    key, metric, descending = run_ordering_parse(ordering)
    if key == "metric":
        return f"{metric}, {'highest' if descending else 'lowest'} first"
    return f"{dict(SORTS).get(ordering.removeprefix('-'), key.capitalize())}, reversed"


def _row(run: ExperimentRun, columns: list[MetricColumn]) -> RunRow:
    metrics = run.metrics or {}
    values = [number_text(metrics[column.name]) if column.name in metrics else "" for column in columns]
    return RunRow(line=RunLine.of(run, run.spec.criterion), values=values)


def _active_filters(query: QueryDict, filters: RunFilters) -> list[tuple[str, str, str]]:
    """(label, value, URL without it) for each filter in use: the chips that remove one."""
    chips = []
    for name in ("kind", "status", "idea", "spec", "user"):
        value = getattr(filters, name)
        if value in ("", None):
            continue
        removed = {name: None, "columns": None} if name == "kind" else {name: None}
        chips.append((FILTER_LABELS[name], str(value), _url_with(query, **removed)))
    return chips


def _url_with(query: QueryDict, **changes: str | None) -> str:
    """This list's address with some parameters changed (None: removed), back on its first page."""
    rest = query.copy()
    rest.pop("page", None)
    for name, value in changes.items():
        rest.pop(name, None)
        if value is not None:
            rest[name] = value
    return reverse("run-list") + (f"?{rest.urlencode()}" if rest else "")
