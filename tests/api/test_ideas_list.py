"""GET /api/ideas/: filters, search, ordering, pages, and refusing what it does not understand."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import RunStatus
from ideas.models import IdeaKind, IdeaStatus, Vote
from tests.api.conftest import assert_error, client_for
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
URL = "/api/ideas/"


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["title"] for item in response.json()["results"]]


def test_list_is_paged_and_carries_every_field(anon_client, author):
    tag, collection = TagFactory(name="probing"), CollectionFactory(name="hackathon")
    idea = IdeaFactory(author=author, legacy_number=131, imported_votes=4)
    idea.tags.add(tag)
    idea.collections.add(collection)

    body = anon_client.get(URL).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    item = body["results"][0]
    assert item["id"] == idea.pk and item["legacy_number"] == 131 and item["slug"] == idea.slug
    assert item["kind"] == "hypothesis" and item["status"] == "open" and item["score"] == 4
    assert item["voted"] is False and item["author"] == author.username
    assert item["tags"] == [{"name": "probing", "slug": "probing"}]
    assert item["collections"] == [{"name": "hackathon", "slug": "hackathon"}]
    assert item["url"] == f"http://testserver/api/ideas/{idea.pk}/"
    assert item["created_at"] and item["updated_at"]
    assert (item["experiment_count"], item["run_count"], item["latest_verdict"]) == (0, 0, "")


def test_voted_is_for_the_caller(user):
    voted = IdeaFactory(title="Voted")
    IdeaFactory(title="Other")
    Vote.objects.create(user=user, idea=voted)
    results = client_for(user).get(URL, {"ordering": "title"}).json()["results"]
    assert [(item["title"], item["voted"]) for item in results] == [("Other", False), ("Voted", True)]
    assert all(item["voted"] is False for item in client_for(UserFactory()).get(URL).json()["results"])


def test_filters_narrow_the_list(anon_client):
    tag, collection = TagFactory(name="saes"), CollectionFactory(name="mats")
    alice = UserFactory(username="alice")
    tagged = IdeaFactory(title="Tagged")
    tagged.tags.add(tag)
    collected = IdeaFactory(title="Collected", kind=IdeaKind.OPEN_ENDED, status=IdeaStatus.IN_PROGRESS)
    collected.collections.add(collection)
    IdeaFactory(title="By Alice", author=alice)

    assert titles(anon_client.get(URL, {"tag": "saes"})) == ["Tagged"]
    assert titles(anon_client.get(URL, {"collection": "mats"})) == ["Collected"]
    assert titles(anon_client.get(URL, {"kind": "open_ended"})) == ["Collected"]
    assert titles(anon_client.get(URL, {"status": "in_progress"})) == ["Collected"]
    assert titles(anon_client.get(URL, {"author": "alice"})) == ["By Alice"]
    assert titles(anon_client.get(URL, {"author": "nobody"})) == []


def test_search_matches_title_and_body(anon_client):
    IdeaFactory(title="Sparse autoencoders on GPT-2", body="features")
    IdeaFactory(title="Reward hacking", body="We train sparse probes.")
    IdeaFactory(title="Unrelated", body="nothing here")
    assert sorted(titles(anon_client.get(URL, {"search": "sparse"}))) == [
        "Reward hacking",
        "Sparse autoencoders on GPT-2",
    ]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("score", ["B", "C", "A"]),
        ("-score", ["A", "C", "B"]),
        ("title", ["A", "B", "C"]),
        ("-title", ["C", "B", "A"]),
        ("created", ["C", "A", "B"]),
        ("-created", ["B", "A", "C"]),
    ],
)
def test_orderings(anon_client, ordering, expected):
    IdeaFactory(title="C", imported_votes=5)
    IdeaFactory(title="A", imported_votes=9)
    IdeaFactory(title="B", imported_votes=1)
    assert titles(anon_client.get(URL, {"ordering": ordering})) == expected


def test_pages_link_to_each_other(anon_client):
    for n in range(5):
        IdeaFactory(title=f"Idea {n}", imported_votes=n)
    first = anon_client.get(URL, {"page_size": 2}).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    assert "page=2" in first["next"] and "page_size=2" in first["next"]
    last = anon_client.get(URL, {"page_size": 2, "page": 3}).json()
    assert [item["title"] for item in last["results"]] == ["Idea 0"] and last["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kidn": "hypothesis"}, "kidn"),
        ({"kind": "theory"}, "kind"),
        ({"status": "done"}, "status"),
        ({"status": "resolvedx"}, "status"),
        ({"ordering": "votes"}, "ordering"),
        ({"tag": "no-such-tag"}, "tag"),
        ({"collection": "no-such-collection"}, "collection"),
        ({"page_size": 101}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"page": "first"}, "page"),
        ({"page": 0}, "page"),
        ({"search": "x" * 201}, "search"),
        ({"search": "a\x00b"}, "search"),
        ({"format": "xml"}, "format"),
        ({"has_experiments": "1"}, "has_experiments"),
        ({"has_experiments": "yes"}, "has_experiments"),
        ({"has_experiments": "True"}, "has_experiments"),
        ({"has_experiments": ""}, "has_experiments"),
        ({"has_experiments": "true "}, "has_experiments"),
    ],
)
def test_bad_parameters_are_400_naming_them(anon_client, params, field):
    assert_error(anon_client.get(URL, params), 400, field=field, code="invalid")


def test_bad_has_experiments_says_what_it_takes(anon_client):
    body = assert_error(anon_client.get(URL, {"has_experiments": "on"}), 400, field="has_experiments")
    assert body["errors"]["has_experiments"] == ["Must be true or false."]
    assert_error(anon_client.get(URL + "?has_experiments=true%00"), 400, field="has_experiments")
    assert_error(anon_client.get(URL + "?has_experiments=true&has_experiments=false"), 400, field="has_experiments")


def _ideas_with_and_without_experiments() -> None:
    tested = IdeaFactory(title="Tested")
    spec = ExperimentSpecFactory(idea=tested)
    finished_run(spec, "supports", minutes_ago=30)
    finished_run(spec, "refutes", minutes_ago=10)
    ExperimentRunFactory(spec=ExperimentSpecFactory(idea=tested, title="Second"), status=RunStatus.RUNNING)
    ExperimentSpecFactory(idea=IdeaFactory(title="Planned"))
    IdeaFactory(title="Untested")


def test_has_experiments_filters_the_list(anon_client):
    _ideas_with_and_without_experiments()
    assert sorted(titles(anon_client.get(URL, {"has_experiments": "true"}))) == ["Planned", "Tested"]
    assert titles(anon_client.get(URL, {"has_experiments": "false"})) == ["Untested"]
    assert len(titles(anon_client.get(URL))) == 3


def test_each_idea_carries_its_experiment_and_run_counts_and_latest_verdict(anon_client):
    _ideas_with_and_without_experiments()
    results = anon_client.get(URL, {"ordering": "title"}).json()["results"]
    assert [
        (item["title"], item["experiment_count"], item["run_count"], item["latest_verdict"]) for item in results
    ] == [("Planned", 1, 0, ""), ("Tested", 2, 3, "refutes"), ("Untested", 0, 0, "")]


def test_export_takes_the_has_experiments_filter_too(anon_client):
    _ideas_with_and_without_experiments()
    response = anon_client.get("/api/ideas/export/", {"format": "json", "has_experiments": "false"})
    assert [idea["title"] for idea in response.json()["ideas"]] == ["Untested"]
    assert_error(anon_client.get("/api/ideas/export/", {"has_experiments": "1"}), 400, field="has_experiments")


def test_repeated_parameter_is_refused(anon_client):
    assert_error(anon_client.get(URL + "?kind=hypothesis&kind=open_ended"), 400, field="kind")


def test_page_past_the_end_is_404(anon_client):
    IdeaFactory()
    assert_error(anon_client.get(URL, {"page": 2}), 404, code="not_found")


def test_page_size_of_100_is_allowed(anon_client):
    IdeaFactory.create_batch(3)
    assert anon_client.get(URL, {"page_size": 100}).json()["count"] == 3


def _add_ideas(n: int) -> None:
    tags = TagFactory.create_batch(3)
    collections = CollectionFactory.create_batch(2)
    for idea in IdeaFactory.create_batch(n, author=UserFactory()):
        idea.tags.set(tags)
        idea.collections.set(collections)


def _queries_for_list(client, expected: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"page_size": 100})
    assert len(response.json()["results"]) == expected
    return len(queries)


@pytest.mark.parametrize("signed_in", [False, True])
def test_list_costs_the_same_queries_for_3_or_50_ideas(signed_in):
    client = client_for(UserFactory() if signed_in else None)
    _add_ideas(3)
    few = _queries_for_list(client, 3)
    _add_ideas(47)
    many = _queries_for_list(client, 50)
    assert few == many
    assert many <= 5  # (the token) + count + page + tags + collections


def test_list_with_experiments_costs_the_same_queries(anon_client, django_assert_max_num_queries):
    """Counts and verdicts are subqueries of the page's query, whatever the number of specs and runs."""
    for n in range(10):
        idea = IdeaFactory(title=f"Idea {n}")
        for k in range(n % 4):
            spec = ExperimentSpecFactory(idea=idea, title=f"spec {k}")
            finished_run(spec, "supports" if k % 2 else "refutes", minutes_ago=10 - k)
            ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING)
    with django_assert_max_num_queries(4):  # count + page + tags + collections
        body = anon_client.get(URL, {"page_size": 100, "has_experiments": "true"}).json()
    assert body["count"] == 7
    assert {item["latest_verdict"] for item in body["results"]} == {"supports", "refutes"}


# --- a lean list: few columns, constant queries, addresses without a reverse() per row -------------------


def _page_query(queries) -> str:
    [sql] = [query["sql"] for query in queries if 'FROM "ideas_idea"' in query["sql"] and "LIMIT" in query["sql"]]
    return sql


@pytest.mark.parametrize("page_size", [20, 50])
def test_list_costs_four_queries_at_page_sizes_20_and_50(anon_client, page_size, django_assert_num_queries):
    _add_ideas(60)
    with django_assert_num_queries(4) as queries:  # count + page + tags + collections
        body = anon_client.get(URL, {"page_size": page_size}).json()
    assert (body["count"], len(body["results"])) == (60, page_size)
    sql = _page_query(queries)
    assert '"ideas_idea"."body"' not in sql and '"ideas_idea"."search_vector"' not in sql
    assert '"auth_user"."username"' in sql and '"auth_user"."password"' not in sql
    assert all('"ideas_collection"."description"' not in query["sql"] for query in queries)


@pytest.mark.parametrize("page_size", [20, 50])
def test_search_costs_a_constant_number_of_queries(anon_client, page_size, django_assert_num_queries):
    _add_ideas(60)
    # PostgreSQL first asks whether the search has any words left once stop words are dropped.
    expected = 5 if connection.vendor == "postgresql" else 4
    with django_assert_num_queries(expected):
        body = anon_client.get(URL, {"page_size": page_size, "search": "idea number"}).json()
    assert (body["count"], len(body["results"])) == (60, page_size)


def test_each_idea_carries_its_addresses_built_for_each_request(anon_client, settings):
    ideas = IdeaFactory.create_batch(3)
    results = anon_client.get(URL, {"ordering": "created"}).json()["results"]
    assert [(item["url"], item["page_url"]) for item in results] == [
        (f"http://testserver/api/ideas/{idea.pk}/", f"http://testserver{idea.get_absolute_url()}") for idea in ideas
    ]
    settings.USE_X_FORWARDED_HOST, settings.ALLOWED_HOSTS = True, ["testserver", "ideas.example.org"]
    item = anon_client.get(URL, HTTP_X_FORWARDED_HOST="ideas.example.org").json()["results"][0]
    assert item["url"].startswith("http://ideas.example.org/api/ideas/")


def test_a_search_of_only_stop_words_is_an_empty_page(anon_client):
    IdeaFactory(title="The idea of the year", body="and of the")
    body = anon_client.get(URL, {"search": "the and of"}).json()
    if connection.vendor == "postgresql":
        assert body == {"count": 0, "next": None, "previous": None, "results": []}
    else:  # SQLite matches the words as typed
        assert [item["title"] for item in body["results"]] == ["The idea of the year"]


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (" ".join(["word"] * 33), "At most 32 words (this search has 33)."),
        ("probe\x01", "Control characters are not allowed in a search."),
    ],
)
def test_a_search_it_will_not_run_is_a_400_naming_search(anon_client, search, message):
    body = assert_error(anon_client.get(URL, {"search": search}), 400, field="search")
    assert body["errors"]["search"] == [message]
    assert_error(anon_client.get("/api/ideas/export/", {"search": search}), 400, field="search")
