"""The list page's experiments: a marker on ideas that have some (runs, latest verdict) and the
"has experiments" filter; ideas.selectors.idea_list annotates and filters them for the page and the API."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from experiments.models import RunStatus
from ideas.selectors import IdeaFilters, idea_list
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, IdeaFactory, UserFactory, finished_run

pytestmark = pytest.mark.django_db

LIST = reverse("idea-list")


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(idea.title for idea in response.context["page"].object_list)


def row_of(page: str, idea) -> str:
    start = page.index(f'<a href="{idea.get_absolute_url()}">')
    return page[start : page.index("</li>", start)]


@pytest.fixture
def catalogue():
    """Ideas with a verdict, with runs but none with a verdict, with a spec never run, and with none."""
    tested = IdeaFactory(title="Tested")
    spec = ExperimentSpecFactory(idea=tested)
    finished_run(spec, "refutes", minutes_ago=30)
    finished_run(spec, "supports", minutes_ago=10)
    ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING)
    running = IdeaFactory(title="Running")
    ExperimentRunFactory(spec=ExperimentSpecFactory(idea=running), status=RunStatus.RUNNING)
    planned = IdeaFactory(title="Planned")
    ExperimentSpecFactory(idea=planned)
    ExperimentSpecFactory(idea=planned)
    untested = IdeaFactory(title="Untested")
    return {"tested": tested, "running": running, "planned": planned, "untested": untested}


def test_selector_annotates_each_ideas_experiments(catalogue):
    ideas = {idea.title: idea for idea in idea_list(filters=IdeaFilters())}
    seen = {
        title: (idea.has_experiments, idea.experiment_count, idea.run_count, idea.latest_verdict)
        for title, idea in ideas.items()
    }
    assert seen == {
        "Tested": (True, 1, 3, "supports"),
        "Running": (True, 1, 1, ""),
        "Planned": (True, 2, 0, ""),
        "Untested": (False, 0, 0, ""),
    }


def test_selector_filters_on_having_experiments(catalogue):
    def titles_for(has_experiments):
        return sorted(idea.title for idea in idea_list(filters=IdeaFilters(has_experiments=has_experiments)))

    assert titles_for(True) == ["Planned", "Running", "Tested"]
    assert titles_for(False) == ["Untested"]
    assert titles_for(None) == ["Planned", "Running", "Tested", "Untested"]


def test_list_rows_mark_ideas_with_experiments_and_their_latest_verdict(client, catalogue):
    page = client.get(LIST).content.decode()

    tested = row_of(page, catalogue["tested"])
    assert re.search(r'class="experiments-marker"[^>]*title="1 experiment, 3 runs"', tested)
    assert "⚗</span> 3 runs</a>" in tested
    assert f'href="{catalogue["tested"].get_absolute_url()}#experiments"' in tested
    assert '<span class="badge verdict verdict-supports"' in tested

    running = row_of(page, catalogue["running"])
    assert "⚗</span> 1 run</a>" in running and "verdict-" not in running

    planned = row_of(page, catalogue["planned"])
    assert 'title="2 experiments, not run yet"' in planned and "⚗</span> 2 experiments</a>" in planned

    untested = row_of(page, catalogue["untested"])
    assert "experiments-marker" not in untested and "verdict-" not in untested


def test_list_filter_has_experiments_narrows_the_list_and_shows_a_removable_chip(client, catalogue):
    response = client.get(LIST, {"has_experiments": "1", "kind": "hypothesis"})
    assert titles(response) == ["Planned", "Running", "Tested"]
    page = response.content.decode()
    assert '<input type="checkbox" name="has_experiments" value="1" checked>' in page
    assert 'href="/ideas/?kind=hypothesis" title="Remove this filter">Has experiments: <strong>yes</strong>' in page

    response = client.get(LIST, {"has_experiments": "0"})
    assert titles(response) == ["Untested"]
    assert "Has experiments: <strong>no</strong>" in response.content.decode()

    page = client.get(LIST).content.decode()
    assert '<input type="checkbox" name="has_experiments" value="1">' in page  # unchecked: any
    assert titles(client.get(LIST)) == ["Planned", "Running", "Tested", "Untested"]


def test_list_filter_survives_sorting_and_paging(client, catalogue, settings):
    settings.IDEAS_PAGE_SIZE = 2
    page = client.get(LIST, {"has_experiments": "1"}).content.decode()
    assert 'href="?has_experiments=1&amp;page=2"' in page
    assert 'href="?has_experiments=1&amp;ordering=-created"' in page


@pytest.mark.parametrize("value", ["yes", "2", "on", "truex"])
def test_list_with_an_unreadable_has_experiments_is_a_400_that_says_why(client, value):
    IdeaFactory()
    response = client.get(LIST, {"has_experiments": value, "kind": "poem"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "<strong>Has experiments:</strong> Unknown value" in page
    assert "<strong>Kind:</strong> Unknown kind" in page  # every error at once
    assert 'class="idea-list"' not in page


def test_list_with_a_nul_in_has_experiments_is_refused(client):
    response = client.get(LIST + "?has_experiments=%00")
    assert response.status_code == 400
    assert "has_experiments" in response.content.decode()


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
def test_list_with_experiments_costs_the_same_queries_as_without(
    client, settings, logged_in, django_assert_num_queries
):
    """Counts and the latest verdict are subqueries of the page's one query: none per idea, spec or run."""
    settings.IDEAS_PAGE_SIZE = 20
    if logged_in:
        client.force_login(UserFactory())
    for n in range(12):
        idea = IdeaFactory(title=f"Idea {n}")
        for k in range(n % 3):
            spec = ExperimentSpecFactory(idea=idea, title=f"spec {k}")
            finished_run(spec, ("supports", "refutes", "inconclusive")[(n + k) % 3], minutes_ago=n + k)
            ExperimentRunFactory(spec=spec)
    # count, page, tags, collections, tag list, collection list (+ session and user when logged in):
    # what the list cost before it showed experiments.
    with django_assert_num_queries(8 if logged_in else 6):
        response = client.get(LIST, {"has_experiments": "1"})
    assert len(response.context["page"].object_list) == 8
    assert response.content.decode().count('class="experiments-marker"') == 8
