"""The load benchmark's two sides (benchmarks/api.py) answer with the same ideas, and its seed fills what the
services fill: otherwise its ratios would compare different work."""

from __future__ import annotations

import json
import random

import pytest
from django.test import RequestFactory

from benchmarks import api_data, bare_app
from ideas.models import Idea
from tests.factories import IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db


def bare_page(query: str) -> tuple[int, dict]:
    response = bare_app.idea_page(RequestFactory().get(f"/bare/ideas/{query}"))
    return response.status_code, json.loads(response.content)


@pytest.mark.parametrize("page_size", [20, 50])
def test_bare_view_returns_the_list_apis_ideas_in_its_order(client, page_size):
    author = UserFactory(username="ada")
    # Tied scores: the order between them comes from the id, on both sides.
    for n in range(2 * page_size + 5):
        IdeaFactory(score=n % 7, imported_votes=n % 7, author=author if n % 3 else None)

    for page in (1, 2, 3):
        query = f"?page_size={page_size}&page={page}"
        api = client.get(f"/api/ideas/{query}").json()
        status, bare = bare_page(query)

        assert status == 200
        assert bare["count"] == api["count"] == 2 * page_size + 5
        assert [row["id"] for row in bare["results"]] == [row["id"] for row in api["results"]]
        assert [(row["title"], row["score"], row["author__username"]) for row in bare["results"]] == [
            (row["title"], row["score"], row["author"]) for row in api["results"]
        ]


@pytest.mark.parametrize("query", ["?page_size=0", "?page_size=101", "?page=x"])
def test_bare_view_refuses_pages_the_api_refuses(query):
    status, body = bare_page(query)

    assert status == 400 and "page" in body["detail"]


def test_seeded_ideas_have_every_column_idea_create_fills():
    ideas, _ = api_data.idea_objects(random.Random(0), [3, 0, 5], user_ids=[])
    Idea.objects.bulk_create(ideas)

    api_data.check_seed_matches_services()  # raises SystemExit naming the column the seed leaves empty
