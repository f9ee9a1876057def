"""The run list's filters and orderings, and picking runs to compare: `run_list`, `run_comparison`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments.models import ExperimentRun, RunStatus
from experiments.selectors import RunFilters, run_comparison, run_list
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db


def finished(spec, *, seconds: float | None = 1.0, **fields) -> ExperimentRun:
    """A run of `spec` that finished after `seconds` (None: never started)."""
    fields.setdefault("status", RunStatus.SUCCEEDED)
    if seconds is not None:
        started = timezone.now() - timedelta(hours=1)
        fields.update(started_at=started, finished_at=started + timedelta(seconds=seconds))
    return ExperimentRunFactory(spec=spec, **fields)


def ids(**filters) -> list[int]:
    return [run.pk for run in run_list(filters=RunFilters(**filters))]


def error_fields(**filters) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        list(run_list(filters=RunFilters(**filters)))
    return caught.value.message_dict


@pytest.fixture
def catalogue():
    """Two ideas; smoke runs by ada and bob on the first, a train_transformer run by bob on the second."""
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    first, second = IdeaFactory(title="Alpha idea"), IdeaFactory(title="Beta idea")
    smoke = ExperimentSpecFactory(idea=first, author=ada)
    training = ExperimentSpecFactory(idea=second, author=bob, kind="train_transformer", params={})
    return {
        "ada": ada,
        "bob": bob,
        "first": first,
        "second": second,
        "smoke": smoke,
        "training": training,
        "queued": ExperimentRunFactory(spec=smoke, created_by=ada),
        "done": finished(smoke, created_by=bob, metrics={"steps_completed": 3}),
        "trained": finished(training, created_by=bob, metrics={"final_loss": 1.5}),
    }


# --- filters ----------------------------------------------------------------------------------------------


def test_no_filters_lists_every_run_newest_first(catalogue):
    c = catalogue
    assert ids() == [c["trained"].pk, c["done"].pk, c["queued"].pk]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"kind": "smoke"}, ["done", "queued"]),
        ({"kind": "train_transformer"}, ["trained"]),
        ({"status": "queued"}, ["queued"]),
        ({"status": "succeeded"}, ["trained", "done"]),
        ({"user": "ada"}, ["queued"]),
        ({"user": "bob"}, ["trained", "done"]),
        ({"user": "bob", "kind": "smoke"}, ["done"]),
    ],
)
def test_each_filter_narrows_the_list(catalogue, filters, expected):
    assert ids(**filters) == [catalogue[name].pk for name in expected]


def test_idea_and_spec_filters(catalogue):
    c = catalogue
    assert ids(idea=c["first"].pk) == [c["done"].pk, c["queued"].pk]
    assert ids(idea=c["second"].pk) == [c["trained"].pk]
    assert ids(spec=c["training"].pk) == [c["trained"].pk]
    assert ids(spec=c["smoke"].pk, status="queued") == [c["queued"].pk]


def test_a_retired_kind_that_runs_recorded_is_still_a_filter(catalogue):
    ExperimentRun.objects.filter(pk=catalogue["trained"].pk).update(kind="retired_kind")
    assert ids(kind="retired_kind") == [catalogue["trained"].pk]


@pytest.mark.parametrize(
    ("filters", "field", "words"),
    [
        ({"kind": "no_such_kind"}, "kind", "Unknown kind 'no_such_kind'; choose one of"),
        ({"kind": "x" * 500}, "kind", "Unknown kind"),
        ({"status": "exploded"}, "status", "Unknown run status 'exploded'"),
        ({"idea": 424242}, "idea", "No idea with id 424242."),
        ({"spec": 424242}, "spec", "No experiment with id 424242."),
        ({"idea": 2**70}, "idea", "No idea with id"),
        ({"user": "nobody"}, "user", "No user named 'nobody'."),
        ({"ordering": "-score"}, "ordering", "Unknown ordering '-score'"),
        ({"ordering": "metric:"}, "ordering", "is not a metric name"),
        ({"ordering": "-metric:1abc"}, "ordering", "is not a metric name"),
        ({"ordering": "metric:a b"}, "ordering", "is not a metric name"),
        ({"ordering": "metric:loss;drop"}, "ordering", "is not a metric name"),
        ({"ordering": "metric:" + "a" * 101}, "ordering", "is not a metric name"),
        ({"ordering": "metric:loss\n"}, "ordering", "is not a metric name"),
    ],
)
def test_values_that_cannot_match_are_an_error_naming_the_field(catalogue, filters, field, words):
    errors = error_fields(**filters)
    assert list(errors) == [field]
    assert words in errors[field][0]


def test_every_bad_field_is_named_at_once(catalogue):
    assert set(error_fields(kind="nope", status="nope", user="nobody", ordering="nope")) == {
        "kind",
        "status",
        "user",
        "ordering",
    }


def test_the_list_leaves_out_what_only_a_run_page_needs(catalogue):
    run = run_list().get(pk=catalogue["done"].pk)
    assert {"series", "summary", "manifest", "log"} <= run.get_deferred_fields()


# --- orderings --------------------------------------------------------------------------------------------


@pytest.fixture
def scored():
    """Smoke runs with a `score` metric: 2, -0.5, 1e-05, 40 (an int), null, missing, and values that are not
    numbers (a string, a boolean, an object), which sort like missing ones."""
    spec = ExperimentSpecFactory()
    values = {
        "two": 2.0,
        "negative": -0.5,
        "tiny": 1e-05,
        "forty": 40,
        "null": None,
        "text": "abc",
        "boolean": True,
        "object": {"a": 1},
    }
    runs = {name: finished(spec, metrics={"score": value, "other": 1}) for name, value in values.items()}
    runs["missing"] = finished(spec, metrics={"other": 1})
    return runs


def names_of(runs: dict[str, ExperimentRun], ordering: str) -> list[str]:
    by_pk = {run.pk: name for name, run in runs.items()}
    return [by_pk[pk] for pk in ids(ordering=ordering)]


WITHOUT_A_NUMBER_NEWEST_FIRST = ["missing", "object", "boolean", "text", "null"]


def test_ordering_by_a_metric_puts_runs_without_it_last_either_way(scored):
    assert names_of(scored, "metric:score") == ["negative", "tiny", "two", "forty", *WITHOUT_A_NUMBER_NEWEST_FIRST]
    assert names_of(scored, "-metric:score") == ["forty", "two", "tiny", "negative", *WITHOUT_A_NUMBER_NEWEST_FIRST]


def test_ordering_by_a_metric_no_run_has_keeps_newest_first(scored):
    assert names_of(scored, "-metric:absent") == list(reversed(list(scored)))


def test_ordering_by_a_dotted_metric_name_reads_the_key_with_the_dot(db):
    spec = ExperimentSpecFactory()
    low = finished(spec, metrics={"L2.max_score": 0.1, "L2": {"max_score": 9}})
    high = finished(spec, metrics={"L2.max_score": 0.9})
    assert ids(ordering="-metric:L2.max_score") == [high.pk, low.pk]


def test_metric_ordering_on_postgresql_casts_only_jsonb_numbers(postgres_only):
    """jsonb keeps 1e300 as a 301-digit numeric, which casts; a quoted number and a boolean would not: they go last."""
    spec = ExperimentSpecFactory()
    huge = finished(spec, metrics={"m": 1e300})
    small = finished(spec, metrics={"m": -1e-300})
    quoted = finished(spec, metrics={"m": "7"})
    flag = finished(spec, metrics={"m": False})
    assert ids(ordering="-metric:m") == [huge.pk, small.pk, flag.pk, quoted.pk]
    assert ids(ordering="metric:m") == [small.pk, huge.pk, flag.pk, quoted.pk]


def test_ordering_by_duration_status_kind_idea_and_user(catalogue):
    c = catalogue
    slow = finished(c["smoke"], seconds=600, created_by=c["ada"])
    failed = finished(c["smoke"], seconds=0.5, status=RunStatus.FAILED, created_by=None)
    # `queued` never started: no duration, last either way.
    assert ids(ordering="-duration") == [slow.pk, c["trained"].pk, c["done"].pk, failed.pk, c["queued"].pk]
    assert ids(ordering="duration") == [failed.pk, c["trained"].pk, c["done"].pk, slow.pk, c["queued"].pk]
    # Statuses in the order a run lives them; ties newest first.
    assert ids(ordering="status") == [c["queued"].pk, slow.pk, c["trained"].pk, c["done"].pk, failed.pk]
    assert ids(ordering="-kind")[0] == c["trained"].pk
    assert ids(ordering="-idea")[0] == c["trained"].pk  # "Beta idea"
    # ada, then bob; a run nobody started (its user deleted) last either way.
    assert ids(ordering="user") == [slow.pk, c["queued"].pk, c["trained"].pk, c["done"].pk, failed.pk]
    assert ids(ordering="-user")[-1] == failed.pk
    assert ids(ordering="created") == [c["queued"].pk, c["done"].pk, c["trained"].pk, slow.pk, failed.pk]


# --- comparing --------------------------------------------------------------------------------------------


def test_comparison_keeps_the_order_asked_for_with_everything_recorded(catalogue):
    c = catalogue
    runs = run_comparison(ids=[c["trained"].pk, c["queued"].pk, c["done"].pk])
    assert runs == [c["trained"], c["queued"], c["done"]]
    assert not runs[0].get_deferred_fields()


@pytest.mark.parametrize(
    ("make_ids", "words"),
    [
        (lambda c: [c["done"].pk], "Choose 2 to 6 runs to compare; got 1."),
        (lambda c: [], "Choose 2 to 6 runs to compare; got 0."),
        (lambda c: [c["done"].pk] * 7, "got 7"),
        (lambda c: [c["done"].pk, c["queued"].pk, c["done"].pk], lambda c: f"Each run once: {c['done'].pk} appears"),
        (lambda c: [c["done"].pk, 424242, 2**70], f"No run with id 424242, {2**70}."),
    ],
)
def test_comparison_refuses_too_few_too_many_repeated_and_unknown_runs(catalogue, make_ids, words):
    with pytest.raises(ValidationError) as caught:
        run_comparison(ids=make_ids(catalogue))
    message = caught.value.message_dict["ids"][0]
    assert (words(catalogue) if callable(words) else words) in message
