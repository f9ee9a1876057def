"""experiments/views/run_list.py: /runs/, its filters, sorting, metric columns, pages and compare form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from experiments.models import ExperimentRun, RunStatus
from experiments.services import run_trigger
from tests.experiments.views.conftest import executed, html_of
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, IdeaFactory, UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

TRAINING_METRICS = [
    "final_loss",
    "copied_segment_loss",
    "copied_segment_accuracy",
    "repeated_first_half_loss",
    "repeated_second_half_loss",
    "in_context_gain",
    "n_checkpoints",
]


def listed(response) -> list[ExperimentRun]:
    assert response.status_code == 200, html_of(response)[:2000]
    return [row.line.run for row in response.context["rows"]]


def finished(spec, **fields) -> ExperimentRun:
    started = timezone.now() - timedelta(minutes=5)
    fields.setdefault("status", RunStatus.SUCCEEDED)
    return ExperimentRunFactory(spec=spec, started_at=started, finished_at=started + timedelta(seconds=2), **fields)


@pytest.fixture
def runs():
    """Smoke runs by ada (one queued, one done) on one idea, two train_transformer runs by bob on another."""
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    smoke = ExperimentSpecFactory(idea=IdeaFactory(title="Smoke idea"), author=ada, title="Count")
    training = ExperimentSpecFactory(
        idea=IdeaFactory(title="Training idea"), author=bob, kind="train_transformer", params={}, title="Train"
    )
    return {
        "smoke": smoke,
        "training": training,
        "queued": ExperimentRunFactory(spec=smoke, created_by=ada),
        "done": finished(smoke, created_by=ada, metrics={"steps_completed": 3}),
        "low": finished(training, created_by=bob, metrics={"final_loss": 0.25, "n_checkpoints": 30}),
        "high": finished(training, created_by=bob, metrics={"final_loss": 2.5, "n_checkpoints": 30}),
    }


# --- filters and pages ------------------------------------------------------------------------------------


def test_the_list_shows_every_run_newest_first_with_live_rows_for_active_runs(client, runs):
    response = client.get(reverse("run-list"))
    assert listed(response) == [runs["high"], runs["low"], runs["done"], runs["queued"]]
    html = html_of(response)
    assert f'href="/runs/{runs["done"].pk}/"' in html
    assert f'data-status-url="/runs/{runs["queued"].pk}/status.json"' in html
    assert 'href="/runs/" aria-current="page">Runs' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "smoke"}, ["done", "queued"]),
        ({"kind": "train_transformer"}, ["high", "low"]),
        ({"status": "queued"}, ["queued"]),
        ({"status": "succeeded", "kind": "smoke"}, ["done"]),
        ({"user": "bob"}, ["high", "low"]),
        ({"user": " ada "}, ["done", "queued"]),
        ({"ordering": "-metric:final_loss"}, ["high", "low", "done", "queued"]),
        ({"ordering": "metric:final_loss"}, ["low", "high", "done", "queued"]),
        ({"ordering": "created"}, ["queued", "done", "low", "high"]),
        ({"ordering": "status"}, ["queued", "high", "low", "done"]),
        ({"kind": "", "status": "", "user": "", "idea": "", "ordering": ""}, ["high", "low", "done", "queued"]),
    ],
)
def test_each_filter_and_ordering(client, runs, query, expected):
    assert listed(client.get(reverse("run-list"), query)) == [runs[name] for name in expected]


def test_idea_and_spec_filters_show_a_chip_that_removes_them(client, runs):
    training = runs["training"]
    response = client.get(reverse("run-list"), {"idea": training.idea_id, "status": "succeeded"})
    assert listed(response) == [runs["high"], runs["low"]]
    assert f'href="/runs/?status=succeeded" title="Remove this filter">Idea: <strong>{training.idea_id}</strong>' in (
        html_of(response)
    )
    assert listed(client.get(reverse("run-list"), {"spec": runs["smoke"].pk})) == [runs["done"], runs["queued"]]


def test_pages_keep_the_filters(client, runs, monkeypatch):
    from experiments.views import run_list as run_list_views

    monkeypatch.setattr(run_list_views, "RUNS_PAGE_SIZE", 1)
    page_two = client.get(reverse("run-list"), {"kind": "train_transformer", "page": 2})
    assert listed(page_two) == [runs["low"]]
    html = html_of(page_two)
    assert 'rel="prev"' in html and 'href="?kind=train_transformer&amp;page=1"' in html


@pytest.mark.parametrize(
    ("query", "label", "words"),
    [
        ({"kind": "nope"}, "Kind", "Unknown kind &#x27;nope&#x27;"),
        ({"status": "exploded"}, "Status", "Unknown run status &#x27;exploded&#x27;"),
        ({"idea": "x"}, "Idea", "idea must be a number"),
        ({"idea": "-1"}, "Idea", "idea must be a number"),
        ({"idea": "²"}, "Idea", "idea must be a number"),  # a digit to str.isdigit(), not to int()
        ({"idea": "424242"}, "Idea", "No idea with id 424242."),
        ({"spec": "1.5"}, "Experiment", "spec must be a number"),
        ({"spec": "99999999999999999999999"}, "Experiment", "spec must be a number"),
        ({"spec": "424242"}, "Experiment", "No experiment with id 424242."),
        ({"user": "nobody"}, "Started by", "No user named &#x27;nobody&#x27;."),
        ({"ordering": "-score"}, "Sort", "Unknown ordering"),
        ({"ordering": "metric:1bad"}, "Sort", "is not a metric name"),
        ({"ordering": "-metric:a;b"}, "Sort", "is not a metric name"),
        ({"columns": "final_loss,bad name"}, "Columns", "is not a metric name"),
        ({"columns": ",".join(f"m{i}" for i in range(13))}, "Columns", "At most 12 columns; got 13."),
    ],
)
def test_bad_filters_are_a_400_naming_the_filter(client, runs, query, label, words):
    response = client.get(reverse("run-list"), query)
    assert response.status_code == 400
    html = html_of(response)
    assert f"<li><strong>{label}:</strong> " in html and words in html
    assert "run-row" not in html


def test_every_bad_filter_is_named_at_once(client, runs):
    response = client.get(reverse("run-list"), {"idea": "x", "kind": "nope", "user": "nobody"})
    assert response.status_code == 400
    for label in ("Idea", "Kind", "Started by"):
        assert f"<li><strong>{label}:</strong> " in html_of(response)


@pytest.mark.parametrize("name", ["kind", "status", "idea", "spec", "user", "ordering", "columns", "page"])
def test_a_nul_in_any_parameter_is_a_400_naming_it(client, name):
    response = client.get(f"/runs/?{name}=a%00b")
    assert response.status_code == 400
    assert f"Parameter {name}:" in html_of(response) and "NUL" in html_of(response)


# --- columns ----------------------------------------------------------------------------------------------


def header_names(html: str) -> list[str]:
    return re.findall(r'<th scope="col" class="num metric-column".*?<code>([^<]+)</code>', html)


def test_without_a_kind_the_table_shows_each_runs_criterion_value(client, runs):
    criterion = {"metric": "steps_completed", "comparator": ">=", "threshold": 3, "if_met": "supports"}
    runs["smoke"].criterion = criterion
    runs["smoke"].save()
    html = html_of(client.get(reverse("run-list")))
    assert header_names(html) == []
    assert '<th scope="col">Result</th>' in html and "<code>steps_completed = 3</code>" in html


def test_one_kind_shows_its_first_six_metrics_as_sortable_columns(client, runs):
    response = client.get(reverse("run-list"), {"kind": "train_transformer"})
    html = html_of(response)
    assert header_names(html) == TRAINING_METRICS[:6]
    assert '<th scope="col">Result</th>' not in html
    row = html[html.index(f'data-run-id="{runs["low"].pk}"') :]
    assert re.findall(r'<td class="num metric-value">([^<]*)</td>', row)[:6] == ["0.25", "", "", "", "", ""]
    # Each header sorts by its metric, highest first; the chooser offers all seven, six ticked.
    assert 'href="/runs/?kind=train_transformer&amp;ordering=-metric%3Afinal_loss"' in html
    assert len(re.findall(r'name="columns" value="[a-z_]+" checked', html)) == 6
    assert 'name="columns" value="n_checkpoints">' in html


def test_columns_can_be_chosen_in_order_and_the_sorted_one_says_so(client, runs):
    query = {"kind": "train_transformer", "columns": ["n_checkpoints", "final_loss,not_reported"]}
    response = client.get(reverse("run-list"), {**query, "ordering": "-metric:final_loss"})
    html = html_of(response)
    assert header_names(html) == ["n_checkpoints", "final_loss", "not_reported"]
    assert 'aria-sort="descending"><a class="sort-link" href="/runs/?kind=train_transformer' in html
    assert '<option value="-metric:final_loss" selected>final_loss, highest first</option>' in html
    # A reversed header sort the menu does not list stays chosen, so Apply keeps it.
    reversed_status = html_of(client.get(reverse("run-list"), {"ordering": "-status"}))
    assert '<option value="-status" selected>Status, reversed</option>' in reversed_status
    # Clicking the sorted header again sorts the other way.
    assert "ordering=metric%3Afinal_loss" in html
    row = html[html.index(f'data-run-id="{runs["high"].pk}"') :]
    assert re.findall(r'<td class="num metric-value">([^<]*)</td>', row)[:3] == ["30", "2.5", ""]


def test_columns_without_a_kind_show_those_metrics_for_every_run(client, runs):
    html = html_of(client.get(reverse("run-list"), {"columns": "final_loss"}))
    assert header_names(html) == ["final_loss"]


# --- compare form -----------------------------------------------------------------------------------------


def test_every_row_has_a_checkbox_of_a_plain_get_form_to_the_compare_page(client, runs):
    html = html_of(client.get(reverse("run-list")))
    assert '<form method="get" action="/runs/compare/" class="compare-form js-compare-form"' in html
    assert 'data-min="2" data-max="6"' in html
    for run in ExperimentRun.objects.all():
        assert f'<input type="checkbox" name="ids" value="{run.pk}"' in html
    assert '<button type="submit" class="button js-compare-button">Compare selected</button>' in html
    assert "js/run_select.js" in html


# --- cost -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filtered", [False, True])
def test_the_list_costs_the_same_few_queries_for_4_or_22_runs(client, runs, filtered, django_assert_max_num_queries):
    training = runs["training"]
    query = {}
    if filtered:
        query = {"kind": "train_transformer", "ordering": "-metric:final_loss", "user": "bob", "idea": training.idea_id}
    # The idea's and the user's existence, the count, the runs with spec, idea and user, their artifacts.
    with django_assert_max_num_queries(5) as few:
        assert len(listed(client.get(reverse("run-list"), query))) == (2 if filtered else 4)
    for index in range(18):
        finished(training, created_by=training.author, metrics={"final_loss": index / 10})
    with django_assert_max_num_queries(5) as many:
        assert len(listed(client.get(reverse("run-list"), query))) == (20 if filtered else 22)
    assert len(many) == len(few)


def test_a_page_with_runs_that_really_ran(client, hypothesis, author):
    """An executed run and a queued one, end to end: the criterion's value and the live row."""
    spec = smoke_spec(hypothesis, author, title="first")
    done = executed(spec, author)
    queued = run_trigger(spec=smoke_spec(hypothesis, author, title="second"), user=author).run
    response = client.get(reverse("run-list"), {"idea": hypothesis.pk})
    assert listed(response) == [queued, done]
