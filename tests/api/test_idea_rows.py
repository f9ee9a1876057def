"""The list endpoint's plain rows (ideas.selectors.idea_list_rows + idea_rows_complete, built by
api.serializers.idea_rows.summary_rows) hold to IdeaSummarySerializer, the documented schema, field by field."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from api.serializers.idea_rows import summary_rows
from api.serializers.ideas import IdeaSummarySerializer
from experiments.models import RunStatus
from ideas.models import IdeaStatus, Vote
from ideas.selectors import IdeaFilters, idea_list, idea_list_rows, idea_rows_complete
from tests.factories import (
    CollectionFactory,
    ExperimentRunFactory,
    ExperimentSpecFactory,
    IdeaFactory,
    TagFactory,
    UserFactory,
    finished_run,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    """Ideas with tags and collections (several, to test their order), experiments in every state, a vote."""
    alpha, beta, gamma = TagFactory(name="gamma-tag"), TagFactory(name="alpha-tag"), TagFactory(name="beta-tag")
    wide, narrow = CollectionFactory(name="Wide"), CollectionFactory(name="Bay area")
    tested = IdeaFactory(title="Tested", legacy_number=7, imported_votes=3)
    tested.tags.add(alpha, beta, gamma)
    tested.collections.add(wide, narrow)
    spec = ExperimentSpecFactory(idea=tested)
    finished_run(spec, "refutes", minutes_ago=30)
    finished_run(spec, "supports", minutes_ago=10)
    finished_run(spec, "", minutes_ago=5)
    finished_run(ExperimentSpecFactory(idea=tested), "inconclusive", minutes_ago=20, status=RunStatus.FAILED)
    ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING)
    running = IdeaFactory(title="Running", author=None)
    running.tags.add(beta)
    ExperimentRunFactory(spec=ExperimentSpecFactory(idea=running), status=RunStatus.RUNNING)
    planned = IdeaFactory(title="Planned", status=IdeaStatus.ARCHIVED)
    ExperimentSpecFactory(idea=planned)
    ExperimentSpecFactory(idea=planned)
    IdeaFactory(title="Untested")
    voter = UserFactory()
    Vote.objects.create(user=voter, idea=tested)
    Vote.objects.create(user=voter, idea=planned)
    return voter


def both(user, filters: IdeaFilters | None = None) -> tuple[list[dict], list[dict]]:
    """(the serializer's output, the plain rows') for the same list, as `user` would get them."""
    request = APIRequestFactory().get("/api/ideas/")
    request.user = user
    filters = filters or IdeaFilters()
    serialized = IdeaSummarySerializer(idea_list(filters=filters, user=user), many=True, context={"request": request})
    rows = idea_rows_complete(list(idea_list_rows(filters=filters, user=user)))
    return [dict(item) for item in serialized.data], summary_rows(rows, {"request": request})


@pytest.mark.parametrize("signed_in", [True, False])
def test_plain_rows_equal_the_serializer_field_by_field(catalogue, signed_in):
    user = catalogue if signed_in else None
    expected, plain = both(user)

    assert [item["title"] for item in plain] == [item["title"] for item in expected]
    for want, got in zip(expected, plain, strict=True):
        assert list(got) == list(want)  # the same fields, in the same order
        for field in want:
            assert got[field] == want[field], (want["title"], field)
    by_title = {item["title"]: item for item in plain}
    assert [tag["name"] for tag in by_title["Tested"]["tags"]] == ["alpha-tag", "beta-tag", "gamma-tag"]
    assert by_title["Tested"]["latest_verdict"] == "supports"
    assert (by_title["Tested"]["experiment_count"], by_title["Tested"]["run_count"]) == (2, 5)
    assert by_title["Running"]["author"] is None
    assert by_title["Tested"]["voted"] is signed_in and by_title["Planned"]["voted"] is signed_in
    assert by_title["Untested"]["voted"] is False


@pytest.mark.parametrize(
    "filters",
    [IdeaFilters(has_experiments=True), IdeaFilters(has_experiments=False), IdeaFilters(tag="beta-tag")],
    ids=["with-experiments", "without", "tag"],
)
def test_plain_rows_follow_the_filters(catalogue, filters):
    expected, plain = both(catalogue, filters)
    assert plain == expected


def test_completing_a_page_costs_the_same_queries_for_any_length(catalogue):
    IdeaFactory.create_batch(6)
    rows = list(idea_list_rows(filters=IdeaFilters(), user=catalogue))
    with CaptureQueriesContext(connection) as few:
        idea_rows_complete(rows[:2])
    with CaptureQueriesContext(connection) as many:
        idea_rows_complete(rows)
    assert len(few) == len(many) == 2  # tags and collections together, experiments


def test_an_empty_page_asks_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert idea_rows_complete([]) == []
    assert len(queries) == 0
