"""GET /api/ideas/export/?format=csv|json: the filtered list as a catalogue file that import_ideas reads back."""

from __future__ import annotations

import csv
import io
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from ideas.models import Collection, Idea, Tag
from ideas.services import idea_create
from tests.api.conftest import assert_error
from tests.factories import IdeaFactory, TagFactory
from tests.ideas.test_export import populate, snapshot

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
    assert (row["title"], row["votes"], row["legacy_number"], row["tags"]) == ("Tagged", "2", "5", "probing;saes")
    assert (row["kind"], row["status"], row["body"], row["slug"]) == (
        "hypothesis",
        "open",
        "Some *markdown* body.",
        ideas[0].slug,
    )


def test_csv_cells_never_become_formulas(anon_client, ideas):
    titles = [row["title"] for row in read_csv(anon_client.get(URL, {"format": "csv", "ordering": "-score"}))]
    assert titles == ["Tagged", '\'=HYPERLINK("http://evil")', "Plain"]


def test_csv_is_the_default(anon_client, ideas):
    assert len(read_csv(anon_client.get(URL))) == 3


def test_json_export(anon_client, ideas):
    response = anon_client.get(URL, {"format": "json", "search": "Plain"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert (document["format"], document["version"]) == ("ai-safety-ideas-catalogue", 1)
    assert [(item["title"], item["body"]) for item in document["ideas"]] == [("Plain", "Some *markdown* body.")]


def test_export_follows_accept_without_format(anon_client, ideas):
    response = anon_client.get(URL, HTTP_ACCEPT="application/json")
    assert len(response.json()["ideas"]) == 3


def test_the_api_and_the_command_write_the_same_file(anon_client, ideas):
    for file_format in ("json", "csv"):
        out = StringIO()
        call_command("export_ideas", "--format", file_format, stdout=out)
        # The command writes in catalogue order, the API in the list's: here the two agree.
        response = anon_client.get(URL, {"format": file_format, "ordering": "-score"})
        assert response.content.decode() == out.getvalue()


def test_a_name_csv_cannot_hold_is_400_pointing_at_json(anon_client, ideas):
    ideas[2].tags.add(TagFactory(name="a;b"))
    body = assert_error(anon_client.get(URL, {"format": "csv"}), 400, field="format")
    assert "export JSON" in body["errors"]["format"][0]
    assert anon_client.get(URL, {"format": "json"}).status_code == 200


@pytest.mark.parametrize("file_format", ["json", "csv"])
@pytest.mark.django_db(transaction=True)
def test_api_export_imported_into_an_empty_database_reproduces_it(tmp_path, file_format):
    populate()
    idea_create(
        author=None,
        title="=SUM(1, 2) looks like a formula",
        kind="open_ended",
        body="- starts like a list\n- and a formula, to a spreadsheet",
        tags=["-negative", "@at"],
    )
    before = snapshot()
    assert len(before) == 26
    response = APIClient().get(URL, {"format": file_format})
    assert response.status_code == 200, response.content
    path = tmp_path / f"ideas.{file_format}"
    path.write_bytes(response.content)

    call_command("flush", interactive=False, verbosity=0)
    assert not Idea.objects.exists() and not Tag.objects.exists() and not Collection.objects.exists()
    out = StringIO()
    call_command("import_ideas", str(path), stdout=out)

    assert "created 26, updated 0, unchanged 0, links added 3" in out.getvalue()
    assert snapshot() == before


@pytest.mark.parametrize(
    ("params", "field"),
    [({"format": "xlsx"}, "format"), ({"format": "csv", "kind": "x"}, "kind"), ({"format": "csv", "page": 2}, "page")],
)
def test_export_errors_are_json_even_for_csv(anon_client, params, field):
    assert_error(anon_client.get(URL, params), 400, field=field)


def test_empty_csv_export_still_has_its_header(anon_client):
    response = anon_client.get(URL, {"format": "csv"})
    assert read_csv(response) == []
    assert response.content.decode() == "legacy_number,slug,title,kind,status,votes,body,tags,collections,links\n"
