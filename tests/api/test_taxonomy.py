"""GET /api/tags/ and /api/collections/: every one, with how many ideas it has."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error
from tests.factories import CollectionFactory, IdeaFactory, TagFactory

pytestmark = pytest.mark.django_db


def test_tags_with_idea_counts(anon_client):
    probing, unused = TagFactory(name="probing"), TagFactory(name="unused")
    for idea in IdeaFactory.create_batch(2):
        idea.tags.add(probing)
    assert anon_client.get("/api/tags/").json() == [
        {"name": "probing", "slug": "probing", "idea_count": 2},
        {"name": "unused", "slug": unused.slug, "idea_count": 0},
    ]


def test_collections_with_idea_counts(anon_client):
    collection = CollectionFactory(name="hackathon", description="Ideas from the hackathon.")
    IdeaFactory().collections.add(collection)
    assert anon_client.get("/api/collections/").json() == [
        {"name": "hackathon", "slug": "hackathon", "description": "Ideas from the hackathon.", "idea_count": 1}
    ]


def test_taxonomy_is_read_only(user):
    from tests.api.conftest import client_for

    assert_error(client_for(user).post("/api/tags/", {"name": "x"}, format="json"), 405)
