"""`export_ideas`, and importing its JSON and CSV back with `import_ideas`."""

from __future__ import annotations

import csv
import io
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ideas.management.commands.import_ideas import default_catalogue
from ideas.models import Collection, Idea, IdeaLink, Tag
from ideas.services import idea_create, idea_link_add, idea_set_status, idea_vote, tags_from_names
from tests.factories import UserFactory


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def populate() -> None:
    """The shipped catalogue, plus what people do to it: statuses, tags, collections, links, votes."""
    run("import_ideas", str(default_catalogue()))
    by_number = {idea.legacy_number: idea for idea in Idea.objects.all()}
    idea_set_status(idea=by_number[1], status="resolved", reason="Answered.")
    idea_set_status(idea=by_number[6], status="supported", reason="Replicated.")
    by_number[1].tags.set(tags_from_names(["interpretability", "toy models"]))
    by_number[6].tags.set(tags_from_names(["IOI"]))
    by_number[2].collections.add(Collection.objects.create(name="Hackathon 2023", slug="hackathon-2023"))
    new = idea_create(
        author=None,
        title='A new idea, with "quotes"; and commas',
        kind="hypothesis",
        body='Line one, with "quotes".\n\nLine two: café ▲ 3 Open\n- a list item',
        tags=["new"],
    )
    idea_link_add(source=by_number[1], target=new, link_type="relates_to")
    idea_link_add(source=new, target=by_number[2], link_type="expands")
    idea_link_add(source=by_number[3], target=by_number[4], link_type="duplicates")
    for voter in UserFactory.create_batch(2):
        idea_vote(idea=by_number[1], user=voter)
    idea_vote(idea=new, user=UserFactory())


def snapshot() -> list[tuple]:
    """Everything an export promises to carry, per idea, independent of database ids."""

    def ref(idea: Idea) -> int | str:
        return idea.legacy_number or idea.slug

    rows = []
    for idea in Idea.objects.prefetch_related("tags", "collections", "links_out__target"):
        rows.append(
            (
                idea.legacy_number,
                idea.slug,
                idea.title,
                idea.kind,
                idea.status,
                idea.score,
                idea.body,
                sorted(tag.name for tag in idea.tags.all()),
                sorted(c.name for c in idea.collections.all()),
                sorted((link.link_type, str(ref(link.target))) for link in idea.links_out.all()),
            )
        )
    return sorted(rows, key=lambda row: (row[0] or 0, row[1]))


@pytest.mark.parametrize("file_format", ["json", "csv"])
@pytest.mark.django_db(transaction=True)
def test_export_imported_into_an_empty_database_reproduces_it(tmp_path, file_format):
    populate()
    before = snapshot()
    assert len(before) == 25 and IdeaLink.objects.count() == 3
    path = tmp_path / f"catalogue.{file_format}"
    run("export_ideas", "--format", file_format, "--output", str(path))

    call_command("flush", interactive=False, verbosity=0)
    assert not Idea.objects.exists() and not Tag.objects.exists() and not Collection.objects.exists()
    output = run("import_ideas", str(path))

    assert "created 25, updated 0, unchanged 0, links added 3" in output
    assert snapshot() == before
    # No header, so no extra collection: only the exported ones.
    assert set(Collection.objects.values_list("name", flat=True)) == {"AI Safety Ideas", "Hackathon 2023"}


@pytest.mark.django_db
def test_json_export_carries_each_idea():
    populate()

    document = json.loads(run("export_ideas", "--format", "json"))

    first = document["ideas"][0]
    assert first["legacy_number"] == 1
    assert first["title"] == "Investigate how 3-layer and 4-layer attention-only models differ from 2L"
    assert (first["kind"], first["status"], first["votes"]) == ("open_ended", "resolved", 6 + 2)
    assert first["tags"] == ["interpretability", "toy models"]
    assert first["collections"] == ["AI Safety Ideas"]
    new = Idea.objects.get(legacy_number=None)
    assert first["links"] == [{"type": "relates_to", "target": new.slug}]
    last = document["ideas"][-1]
    assert (last["legacy_number"], last["slug"], last["votes"]) == (None, new.slug, 1)
    assert last["links"] == [{"type": "expands", "target": 2}]


@pytest.mark.django_db
def test_csv_export_joins_names_and_links_with_semicolons():
    populate()

    rows = list(csv.DictReader(io.StringIO(run("export_ideas", "--format", "csv"))))

    assert len(rows) == 25
    assert rows[0]["tags"] == "interpretability;toy models"
    assert rows[1]["collections"] == "AI Safety Ideas;Hackathon 2023"
    assert rows[2]["links"] == "duplicates:4"
    assert rows[24]["body"].startswith('Line one, with "quotes".\n\nLine two')


@pytest.mark.django_db
def test_export_to_a_file_says_where(tmp_path):
    populate()
    path = tmp_path / "out.json"

    output = run("export_ideas", "--output", str(path))

    assert f"to {path}" in output
    assert len(json.loads(path.read_text(encoding="utf-8"))["ideas"]) == 25


@pytest.mark.django_db(transaction=True)
def test_export_is_detected_by_content_whatever_its_name(tmp_path):
    populate()
    path = write(tmp_path, run("export_ideas", "--format", "json"), "catalogue.txt")
    call_command("flush", interactive=False, verbosity=0)

    assert "created 25" in run("import_ideas", str(path))


@pytest.mark.django_db
def test_importing_an_export_into_the_same_database_adds_its_votes_again(tmp_path):
    populate()
    path = write(tmp_path, run("export_ideas", "--format", "json"), "catalogue.json")

    output = run("import_ideas", str(path))

    # As the help says: the export's votes (score 6 imported + 2 live) become imported votes.
    first = Idea.objects.get(legacy_number=1)
    assert (first.imported_votes, first.score) == (8, 10)
    assert "created 0" in output and Idea.objects.count() == 25


RECORD = {"legacy_number": 1, "title": "An idea", "kind": "hypothesis", "status": "open", "votes": 2}


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"votes": "many"}, "record 2: field 'votes': 'many' is not a whole number"),
        ({"votes": -1}, "record 2: field 'votes': -1 is less than 0"),
        ({"status": "done"}, "record 2: field 'status': 'Done' is not a status of a hypothesis idea"),
        ({"kind": "question"}, "record 2: field 'kind': unknown kind 'question'"),
        ({"title": " "}, "record 2: field 'title': is required"),
        ({"links": [{"type": "cites", "target": 1}]}, "record 2: field 'links': unknown link type 'cites'"),
        ({"slug": "not a slug"}, "record 2: field 'slug': 'not a slug' is not a slug"),
        ({"vote": 3}, "record 2: field 'vote': unknown field"),
        ({"legacy_number": 1}, "record 2: legacy number 1 is used twice in this file"),
    ],
)
@pytest.mark.django_db
def test_a_bad_json_record_is_refused_naming_it_and_its_field(tmp_path, bad, expected):
    records = [RECORD, {**RECORD, "legacy_number": 2, **bad}]
    path = write(tmp_path, json.dumps({"ideas": records}), "catalogue.json")

    with pytest.raises(CommandError) as raised:
        run("import_ideas", str(path))

    assert str(raised.value).startswith(f"{path}:{expected}")
    assert not Idea.objects.exists()


@pytest.mark.django_db
def test_broken_json_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, '{"ideas": [\n  {"title": "x",\n  }\n]}', "catalogue.json")

    with pytest.raises(CommandError, match=r"catalogue.json:3: not valid JSON"):
        run("import_ideas", str(path))


@pytest.mark.django_db
def test_a_bad_csv_record_is_refused_with_its_line_and_field(tmp_path):
    text = (
        "legacy_number,title,kind,status,votes,body\n"
        '1,First,open_ended,open,3,"a body\nover two lines"\n'
        "2,Second,hypothesis,open,1,\n"
        "3,Third,hypothesis,open,-2,\n"
    )
    path = write(tmp_path, text, "catalogue.csv")

    with pytest.raises(CommandError) as raised:
        run("import_ideas", str(path))

    assert str(raised.value) == f"{path}:5: record 3, field 'votes': -2 is less than 0"
    assert not Idea.objects.exists()


@pytest.mark.django_db
def test_a_csv_with_an_unknown_column_is_refused(tmp_path):
    path = write(tmp_path, "title,kind,status,votes,score\nA,hypothesis,open,1,2\n", "catalogue.csv")

    with pytest.raises(CommandError, match=r"catalogue.csv:1: unknown column 'score'"):
        run("import_ideas", str(path))


@pytest.mark.django_db
def test_a_csv_link_target_can_be_a_slug_in_the_same_file(tmp_path):
    text = (
        "legacy_number,slug,title,kind,status,votes,links\n"
        ",base-problem,Base problem,open_ended,in_progress,2,\n"
        "7,,A claim,hypothesis,refuted,0,expands:base-problem;relates_to:99\n"
    )
    path = write(tmp_path, text, "catalogue.csv")

    output = run("import_ideas", str(path))

    link = IdeaLink.objects.get()
    assert (link.source.legacy_number, link.target.slug, link.link_type) == (7, "base-problem", "expands")
    assert "links added 1 (1 reference to ideas not in the database)" in output
    assert Idea.objects.get(slug="base-problem").status == "in_progress"


@pytest.mark.django_db
def test_csv_keeps_formulas_out_of_spreadsheets_and_reads_back_exactly(tmp_path):
    titles = ["=1+1", "-1 is not a title", "'=already quoted", "''+twice", "'Grokking' in small models", "@home"]
    for number, title in enumerate(titles, start=1):
        Idea.objects.create(title=title, slug=f"idea-{number}", kind="hypothesis", legacy_number=number)
    text = run("export_ideas", "--format", "csv")
    written = [row["title"] for row in csv.DictReader(io.StringIO(text))]
    assert written == [
        "'=1+1",
        "'-1 is not a title",
        "''=already quoted",
        "'''+twice",
        "'Grokking' in small models",
        "'@home",
    ]
    Idea.objects.all().delete()
    run("import_ideas", str(write(tmp_path, text, "catalogue.csv")))
    assert list(Idea.objects.order_by("legacy_number").values_list("title", flat=True)) == titles
