"""GET /api/runs/: the runs page's filters and orderings (kind, user, ordering by a metric), and their 400s.

The list's basics (spec, idea, status, pages, the fields of a run) are in test_runs.py.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from experiments.models import RunStatus
from tests.api.conftest import assert_error
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs():
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    smoke = ExperimentSpecFactory(author=ada)
    training = ExperimentSpecFactory(idea=IdeaFactory(), author=bob, kind="train_transformer", params={})
    return {
        "smoke": smoke,
        "training": training,
        "queued": ExperimentRunFactory(spec=smoke, created_by=ada),
        "done": ExperimentRunFactory(spec=smoke, created_by=ada, status=RunStatus.SUCCEEDED),
        "low": ExperimentRunFactory(spec=training, created_by=bob, metrics={"final_loss": 0.25}),
        "high": ExperimentRunFactory(spec=training, created_by=bob, metrics={"final_loss": 2.5}),
        "none": ExperimentRunFactory(spec=training, created_by=bob, metrics={"final_loss": None}),
    }


def listed(anon_client, runs, **query) -> list[str]:
    response = anon_client.get("/api/runs/", query)
    assert response.status_code == 200, response.content
    names = {run.pk: name for name, run in runs.items() if hasattr(run, "status")}
    return [names[item["id"]] for item in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["none", "high", "low", "done", "queued"]),
        ({"kind": "smoke"}, ["done", "queued"]),
        ({"kind": "train_transformer", "status": "queued"}, ["none", "high", "low"]),
        ({"user": "ada"}, ["done", "queued"]),
        ({"ordering": "-metric:final_loss"}, ["high", "low", "none", "done", "queued"]),
        ({"ordering": "metric:final_loss", "kind": "train_transformer"}, ["low", "high", "none"]),
        ({"ordering": "created"}, ["queued", "done", "low", "high", "none"]),
        ({"ordering": "-status"}, ["done", "none", "high", "low", "queued"]),
        ({"ordering": "-user", "kind": "", "user": ""}, ["none", "high", "low", "done", "queued"]),
    ],
)
def test_filters_and_orderings(anon_client, runs, query, expected):
    assert listed(anon_client, runs, **query) == expected


def test_the_api_and_the_page_list_the_same_runs(client, anon_client, runs):
    query = {"kind": "train_transformer", "user": "bob", "ordering": "-metric:final_loss"}
    from_api = [item["id"] for item in anon_client.get("/api/runs/", query).json()["results"]]
    from_page = [row.line.run.pk for row in client.get(reverse("run-list"), query).context["rows"]]
    assert from_api == from_page == [runs["high"].pk, runs["low"].pk, runs["none"].pk]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"kind": "nope"}, "kind", "Unknown kind 'nope'; choose one of"),
        ({"kind": "x" * 65}, "kind", "no more than 64 characters"),
        ({"user": "nobody"}, "user", "No user named 'nobody'."),
        ({"ordering": "-score"}, "ordering", "Unknown ordering '-score'"),
        ({"ordering": "metric:1x"}, "ordering", "is not a metric name"),
        ({"ordering": "metric:a-b"}, "ordering", "is not a metric name"),
        ({"ordering": "metric:" + "a" * 101}, "ordering", "is not a metric name"),
        ({"idea": "x"}, "idea", "A valid integer is required."),
        ({"idea": 2**70}, "idea", "No idea with id"),
        ({"spec": 0}, "spec", "greater than or equal to 1"),
        ({"columns": "final_loss"}, "columns", "Unknown query parameter"),
        ({"sort": "metrics.final_loss"}, "sort", "Unknown query parameter"),
    ],
)
def test_bad_values_are_a_400_naming_the_parameter(anon_client, runs, query, field, words):
    body = assert_error(anon_client.get("/api/runs/", query), 400, field=field, code="invalid")
    assert words in body["errors"][field][0]


def test_every_bad_value_is_named_at_once(anon_client, runs):
    body = assert_error(anon_client.get("/api/runs/", {"kind": "a", "user": "b", "ordering": "c"}), 400)
    assert set(body["errors"]) == {"kind", "user", "ordering"}


@pytest.mark.parametrize("name", ["kind", "status", "idea", "spec", "user", "ordering", "page", "page_size"])
def test_a_nul_in_any_parameter_is_a_400_naming_it(anon_client, name):
    body = assert_error(anon_client.get(f"/api/runs/?{name}=a%00b"), 400, field=name, code="invalid")
    assert "NUL" in body["errors"][name][0]


@pytest.mark.parametrize("filtered", [False, True])
def test_the_list_costs_the_same_queries_for_5_or_25_runs(anon_client, runs, filtered, django_assert_max_num_queries):
    query = {"page_size": 100}
    if filtered:
        query |= {"kind": "train_transformer", "user": "bob", "ordering": "-metric:final_loss"}
    # The list's 4, and which queues have a live worker (asked once, as the page lists queued runs)
    with django_assert_max_num_queries(5) as few:
        assert len(anon_client.get("/api/runs/", query).json()["results"]) == (3 if filtered else 5)
    for index in range(20):
        ExperimentRunFactory(spec=runs["training"], created_by=runs["training"].author, metrics={"final_loss": index})
    with django_assert_max_num_queries(5) as many:
        assert len(anon_client.get("/api/runs/", query).json()["results"]) == (23 if filtered else 25)
    assert len(many) == len(few)
