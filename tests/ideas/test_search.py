"""Searching the catalogue: the stored weighted document on PostgreSQL (kept current by triggers, read
through its GIN index), input refused before it reaches the database, and word matching on SQLite."""

from __future__ import annotations

import pytest
from django.contrib.postgres.search import SearchQuery
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ideas.models import Idea, IdeaKind, Tag
from ideas.selectors import SEARCH_MAX_WORDS, IdeaFilters, idea_list
from ideas.services import idea_create, idea_update
from tests.factories import IdeaFactory, TagFactory

pytestmark = pytest.mark.django_db
GIN_INDEX = "ideas_idea_search_vector_gin"


def found(text: str) -> list[str]:
    return [idea.title for idea in idea_list(filters=IdeaFilters(search=text))]


def matched_by_stored_vector(word: str) -> set[str]:
    """Titles of the ideas whose stored document matches `word`: the column itself, not the selector."""
    query = SearchQuery(word, search_type="websearch", config="english")
    return set(Idea.objects.filter(search_vector=query).values_list("title", flat=True))


# --- PostgreSQL: the stored document and its triggers -------------------------------------------------


@pytest.mark.postgres
def test_stored_vector_follows_title_and_body_edits(postgres_only, user):
    idea = idea_create(author=user, title="Sparse autoencoders", kind=IdeaKind.HYPOTHESIS, body="About probing.")
    assert matched_by_stored_vector("autoencoders") == matched_by_stored_vector("probing") == {"Sparse autoencoders"}

    idea_update(idea=idea, user=user, title="Dictionary learning")
    assert matched_by_stored_vector("autoencoders") == set()
    assert matched_by_stored_vector("dictionary") == {"Dictionary learning"}

    idea_update(idea=idea, user=user, body="About steering.")
    assert matched_by_stored_vector("probing") == set()
    assert matched_by_stored_vector("steering") == {"Dictionary learning"}
    # Writes that touch neither title nor body (a vote's score, a status) leave the document as it was.
    Idea.objects.filter(pk=idea.pk).update(score=5, status="in_progress")
    assert matched_by_stored_vector("steering") == {"Dictionary learning"}


@pytest.mark.postgres
def test_stored_vector_follows_tags_added_removed_and_renamed(postgres_only, user):
    idea = idea_create(author=user, title="Probes", kind=IdeaKind.HYPOTHESIS, tags=["grokking", "superposition"])
    assert matched_by_stored_vector("grokking") == matched_by_stored_vector("superposition") == {"Probes"}

    idea.tags.remove(Tag.objects.get(slug="grokking"))
    assert matched_by_stored_vector("grokking") == set()
    assert matched_by_stored_vector("superposition") == {"Probes"}

    idea.tags.add(TagFactory(name="steering"))
    assert matched_by_stored_vector("steering") == {"Probes"}

    tag = Tag.objects.get(slug="superposition")
    tag.name = "polysemanticity"
    tag.save()
    assert matched_by_stored_vector("superposition") == set()
    assert matched_by_stored_vector("polysemanticity") == {"Probes"}

    idea_update(idea=idea, user=user, tags=[])  # clears every link in one statement
    assert matched_by_stored_vector("polysemanticity") == matched_by_stored_vector("steering") == set()


@pytest.mark.postgres
def test_stored_vector_weighs_title_a_body_b_tags_c(postgres_only, user):
    idea = idea_create(author=user, title="Induction", kind=IdeaKind.HYPOTHESIS, body="Heads.", tags=["circuits"])
    stored = Idea.objects.values_list("search_vector", flat=True).get(pk=idea.pk)
    assert stored == "'circuit':3C 'head':2B 'induct':1A"


@pytest.mark.postgres
def test_a_title_match_ranks_above_a_body_match_above_a_tag_match(postgres_only, user):
    for title, body, tags in [
        ("Tag match", "Nothing here.", ["probing"]),
        ("Body match", "We try probing.", []),
        ("Title match: probing", "Nothing here.", []),
        ("No match", "Nothing here.", ["steering"]),
    ]:
        idea_create(author=user, title=title, kind=IdeaKind.HYPOTHESIS, body=body, tags=tags)
    assert found("probing") == ["Title match: probing", "Body match", "Tag match"]


@pytest.mark.postgres
def test_search_can_read_the_gin_index(postgres_only):
    """The match is on the indexed column, so the index can answer it: the plans of the page and of its
    count name the GIN index. With a few rows the planner rightly prefers reading the whole table (or a
    whole btree index), so sequential, index and index-only scans are switched off for this transaction,
    leaving a bitmap scan of an index that answers the match as the only way in; a match on a computed
    document has none and would fail. (With 10,000 ideas the planner picks the GIN index on its own for
    a rare word.)"""
    IdeaFactory.create_batch(20)
    IdeaFactory(title="Zygomorphic flowers", body="A rare word.")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")

    ideas = idea_list(filters=IdeaFilters(search="zygomorphic"))
    assert GIN_INDEX in ideas[:20].explain()
    assert GIN_INDEX in ideas.order_by().values("pk").explain()  # what the paginator's count reads
    assert [idea.title for idea in ideas] == ["Zygomorphic flowers"]
    # The rank reads the stored column: no document is computed from title and body per row.
    assert "to_tsvector" not in str(ideas.query)


@pytest.mark.postgres
def test_a_search_of_only_stop_words_is_empty_without_reading_ideas(postgres_only):
    IdeaFactory(title="The idea of the year", body="and of the")
    with CaptureQueriesContext(connection) as queries:
        assert found("the and of") == []
        assert found("  ,.;  ") == []
    assert len(queries) == 2
    assert all("ideas_idea" not in query["sql"] for query in queries)
    assert found("year of the") == ["The idea of the year"]  # a real word among them still searches


@pytest.mark.postgres
def test_a_search_of_only_excluded_words_is_refused_naming_search(postgres_only, client):
    IdeaFactory(title="Sparse probes", body="x")
    IdeaFactory(title="Dense probes", body="x")
    with pytest.raises(ValidationError) as error:
        found("-sparse -dense")
    assert list(error.value.message_dict) == ["search"]
    response = client.get("/api/ideas/", {"search": "-sparse"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["search"]
    assert client.get("/ideas/", {"search": "-sparse"}).status_code == 400
    assert found("probes -sparse") == ["Dense probes"]  # a word to look for, then an exclusion: fine


# --- input refused before any search ---------------------------------------------------------------


def test_more_words_than_the_limit_is_refused_naming_search(idea):
    words = " ".join(f"w{n}" for n in range(SEARCH_MAX_WORDS + 1))
    with pytest.raises(ValidationError) as error:
        idea_list(filters=IdeaFilters(search=words))
    assert error.value.message_dict == {"search": [f"At most {SEARCH_MAX_WORDS} words (this search has 33)."]}
    assert found(" ".join(["zebra"] * SEARCH_MAX_WORDS)) == []


@pytest.mark.parametrize("text", ["a\x00b", "probe\x01", "\x1bx"])
def test_control_characters_are_refused_naming_search(idea, text):
    with pytest.raises(ValidationError) as error:
        idea_list(filters=IdeaFilters(search=text))
    assert list(error.value.message_dict) == ["search"]


def test_tabs_and_newlines_are_spaces(idea):
    IdeaFactory(title="Sparse probes", body="x")
    assert found("sparse\tprobes\n") == ["Sparse probes"]


# --- SQLite: word matching --------------------------------------------------------------------------


def test_sqlite_matches_every_word_in_title_or_body():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite fallback")
    IdeaFactory(title="Sparse autoencoders", body="on GPT-2")
    IdeaFactory(title="Sparse probes", body="on BERT")
    IdeaFactory(title="The idea", body="nothing")
    assert found("sparse gpt-2") == ["Sparse autoencoders"]
    assert sorted(found("SPARSE")) == ["Sparse autoencoders", "Sparse probes"]
    assert found("the") == ["The idea"]  # no stop words here: every word is matched as typed
