"""GET /api/ideas/export/?format=csv|json: the filtered list in one file."""

from __future__ import annotations

import csv
import io

import pytest

from tests.api.conftest import assert_error
from tests.factories import IdeaFactory, TagFactory

pytestmark = pytest.mark.django_db
URL = "/api/ideas/export/"


@pytest.fixture
def ideas():
    tag = TagFactory(name="probing")
    tagged = IdeaFactory(title="Tagged", imported_votes=2, legacy_number=5)
    tagged.tags.add(tag, TagFactory(name="saes"))
    return [tagged, IdeaFactory(title='=HYPERLINK("http://evil")', imported_votes=1), IdeaFactory(title="Plain")]


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="ideas.csv"'
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_csv_export_of_a_filtered_list(anon_client, ideas):
    rows = read_csv(anon_client.get(URL, {"format": "csv", "tag": "probing"}))
    assert len(rows) == 1
    row = rows[0]
    assert (row["title"], row["score"], row["legacy_number"], row["tags"]) == ("Tagged", "2", "5", "probing; saes")
    assert row["voted"] == "false" and row["url"].endswith(f"/api/ideas/{ideas[0].pk}/")


def test_csv_cells_never_become_formulas(anon_client, ideas):
    titles = [row["title"] for row in read_csv(anon_client.get(URL, {"format": "csv", "ordering": "-score"}))]
    assert titles == ["Tagged", '\'=HYPERLINK("http://evil")', "Plain"]


def test_csv_is_the_default(anon_client, ideas):
    assert len(read_csv(anon_client.get(URL))) == 3


def test_json_export(anon_client, ideas):
    response = anon_client.get(URL, {"format": "json", "search": "Plain"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert [item["title"] for item in response.json()] == ["Plain"]


def test_export_follows_accept_without_format(anon_client, ideas):
    response = anon_client.get(URL, HTTP_ACCEPT="application/json")
    assert len(response.json()) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [({"format": "xlsx"}, "format"), ({"format": "csv", "kind": "x"}, "kind"), ({"format": "csv", "page": 2}, "page")],
)
def test_export_errors_are_json_even_for_csv(anon_client, params, field):
    assert_error(anon_client.get(URL, params), 400, field=field)


def test_empty_csv_export_still_has_its_header(anon_client):
    response = anon_client.get(URL, {"format": "csv"})
    assert read_csv(response) == []
    assert response.content.decode().startswith("id,legacy_number,slug,title,")
