"""`import_ideas`: the text catalogue into the database, and back in again."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ideas.importers.references import Reference, find_references
from ideas.management.commands.import_ideas import default_catalogue
from ideas.models import Collection, Idea, IdeaKind, IdeaLink, IdeaStatus, StatusChange, Tag, Vote
from ideas.selectors import IdeaFilters, idea_list
from ideas.services import idea_update, idea_vote

SHIPPED_VOTES = [6, 1, 4, 1, 6, 3, 5, 4, 4, 1, 4, 0, 0, 1, 2, 1, 2, 3, 1, 4, 1, 0, 1, 1]
SHIPPED_HYPOTHESES = {6, 9, 10, 11, 14, 15, 16}  # legacy numbers of the "Hypothesis ▲" ideas
FIRST_TITLE = "Investigate how 3-layer and 4-layer attention-only models differ from 2L"
# Tags the shipped ideas' words give some of them (ideas/importers/derived_tags.py), and
# the ideas whose words point to none ("ML Chinese Whispers", "Complicated models...").
SHIPPED_TAGS = {
    1: {"interpretability"},
    2: {"training dynamics"},
    5: {"interpretability", "grokking", "training dynamics"},
    6: {"interpretability", "IOI"},
    8: {"interpretability", "IOI"},
    10: {"LLM evaluations", "truthfulness"},
    14: {"LLM evaluations", "red teaming"},
    20: {"inner alignment", "deception"},
    21: {"agent foundations"},
}
SHIPPED_UNTAGGED = {11, 13, 17, 18}


def run_import(*args: str) -> str:
    out = StringIO()
    call_command("import_ideas", *args, stdout=out)
    return out.getvalue()


def catalogue(*ideas: tuple[str, str, str, str]) -> str:
    """A text catalogue of (idea line, title, body) ideas under the usual header."""
    return "Test Ideas\n\nIdeas\n\n" + "".join(f"{line}\n\n{title}\n\n{body}\n\n" for line, title, body in ideas)


def write(tmp_path: Path, text: str | bytes, name: str = "catalogue.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def snapshot() -> list[tuple]:
    return list(Idea.objects.order_by("legacy_number").values_list("legacy_number", "slug", "title", "status", "score"))


def tags_by_number() -> dict[int, set[str]]:
    return {idea.legacy_number: {tag.name for tag in idea.tags.all()} for idea in Idea.objects.prefetch_related("tags")}


@pytest.mark.django_db
def test_import_of_the_shipped_catalogue_creates_its_24_ideas():
    run_import(str(default_catalogue()))

    ideas = list(Idea.objects.order_by("legacy_number"))
    assert [idea.legacy_number for idea in ideas] == list(range(1, 25))
    assert [idea.imported_votes for idea in ideas] == SHIPPED_VOTES
    assert [idea.score for idea in ideas] == SHIPPED_VOTES
    assert {idea.legacy_number for idea in ideas if idea.kind == IdeaKind.HYPOTHESIS} == SHIPPED_HYPOTHESES
    assert all(idea.status == IdeaStatus.OPEN for idea in ideas)
    first = ideas[0]
    assert (first.title, first.kind, first.score) == (FIRST_TITLE, IdeaKind.OPEN_ENDED, 6)
    assert first.body.startswith("How do 3-layer and 4-layer attention-only models differ from 2L?")
    assert ideas[23].title == "Generalizable Environment Goals"
    assert ideas[9].title.startswith('An LLM prompted to be "X and truthful" will be less truthful')
    assert set(Collection.objects.get(name="AI Safety Ideas").ideas.all()) == set(ideas)
    assert not StatusChange.objects.exists()


@pytest.mark.django_db
def test_import_keeps_markdown_links_in_bodies():
    run_import(str(default_catalogue()))

    body = Idea.objects.get(legacy_number=3).body
    assert "Read more about [Circuits](https://distill.pub/2020/circuits/zoom-in/)" in body


@pytest.mark.django_db
def test_import_restores_the_shipped_bodies_lists_and_headings():
    run_import(str(default_catalogue()))

    first = Idea.objects.get(legacy_number=1).body
    assert first.startswith("How do 3-layer and 4-layer attention-only models differ from 2L?\n\n- Look for")
    assert "\n## Ideas for new tasks\n" in Idea.objects.get(legacy_number=8).body


@pytest.mark.django_db
def test_import_of_the_shipped_catalogue_tags_ideas_from_their_words():
    run_import(str(default_catalogue()))

    tags = tags_by_number()
    for number, expected in SHIPPED_TAGS.items():
        assert tags[number] == expected, number
    assert {number for number, names in tags.items() if not names} == SHIPPED_UNTAGGED
    # The tag filter works on day one.
    ioi = idea_list(filters=IdeaFilters(tag="ioi"))
    assert sorted(ioi.values_list("legacy_number", flat=True)) == [6, 8]


@pytest.mark.django_db
def test_import_prints_a_summary():
    output = run_import(str(default_catalogue()))

    assert "created 24, updated 0, unchanged 0, links added 0" in output
    # The shipped file points at ideas #131 and #139, which it does not contain.
    assert "2 references to ideas not in the database" in output


@pytest.mark.django_db
def test_import_without_a_path_reads_the_shipped_catalogue():
    run_import()

    assert Idea.objects.count() == 24


@pytest.mark.django_db
def test_reimport_changes_nothing_and_keeps_live_votes(user):
    run_import(str(default_catalogue()))
    before = snapshot()
    idea_vote(idea=Idea.objects.get(legacy_number=1), user=user)

    output = run_import(str(default_catalogue()))

    assert "created 0, updated 0, unchanged 24, links added 0" in output
    assert Idea.objects.count() == 24
    first = Idea.objects.get(legacy_number=1)
    assert (first.imported_votes, first.score) == (6, 6 + 1)
    assert Vote.objects.filter(idea=first).count() == 1
    assert [row[:4] for row in snapshot()] == [row[:4] for row in before]  # slugs stable
    assert not StatusChange.objects.exists()


@pytest.mark.django_db
def test_reimport_keeps_restored_bodies_derived_tags_and_tags_added_on_the_site(staff):
    run_import(str(default_catalogue()))
    bodies = dict(Idea.objects.values_list("legacy_number", "body"))
    tags = tags_by_number()
    first = Idea.objects.get(legacy_number=1)
    idea_update(idea=first, user=staff, tags=[*tags[1], "toy models"])

    output = run_import(str(default_catalogue()))

    assert "created 0, updated 0, unchanged 24" in output
    assert dict(Idea.objects.values_list("legacy_number", "body")) == bodies
    assert tags_by_number() == {**tags, 1: tags[1] | {"toy models"}}
    assert Tag.objects.count() == len(set().union(*tags.values())) + 1


@pytest.mark.django_db
def test_reimport_restores_a_flattened_body_and_adds_missing_derived_tags():
    run_import(str(default_catalogue()))
    ioi = Idea.objects.get(legacy_number=8)
    restored = ioi.body
    # As an import before restoration and derived tags left it.
    Idea.objects.filter(pk=ioi.pk).update(body=" ".join(restored.split()))
    ioi.tags.clear()

    output = run_import(str(default_catalogue()))

    assert "created 0, updated 1, unchanged 23" in output
    ioi.refresh_from_db()
    assert ioi.body == restored
    assert {tag.name for tag in ioi.tags.all()} == SHIPPED_TAGS[8]


FLAT_BODY = "Steps: - Find the circuits - Ablate the neurons ## Results here"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "catalogue.json",
            '[{"title": "Interpretability of grokking", "kind": "open_ended", "status": "open", "votes": 1, '
            f'"body": "{FLAT_BODY}"}}]',
        ),
        (
            "catalogue.csv",
            f"title,kind,status,votes,body\nInterpretability of grokking,open_ended,open,1,{FLAT_BODY}\n",
        ),
    ],
)
@pytest.mark.django_db
def test_json_and_csv_imports_keep_bodies_as_written_and_derive_no_tags(tmp_path, name, content):
    run_import(str(write(tmp_path, content, name)))

    idea = Idea.objects.get()
    assert idea.body == FLAT_BODY
    assert not idea.tags.exists()


@pytest.mark.django_db
def test_reimport_of_an_edited_file_updates_ideas_in_place(tmp_path, user):
    run_import(str(default_catalogue()))
    first = Idea.objects.get(legacy_number=1)
    idea_vote(idea=first, user=user)
    text = default_catalogue().read_text(encoding="utf-8")
    edited = text.replace("Open-ended ▲ 6 Open\n\nInvestigate how", "Open-ended ▲ 9 In progress\n\nCompare how", 1)
    assert edited != text

    output = run_import(str(write(tmp_path, edited)))

    assert "created 0, updated 1, unchanged 23" in output
    first_after = Idea.objects.get(legacy_number=1)
    assert first_after.pk == first.pk and first_after.slug == first.slug
    assert first_after.title.startswith("Compare how 3-layer")
    assert first_after.status == IdeaStatus.IN_PROGRESS
    assert (first_after.imported_votes, first_after.score) == (9, 9 + 1)
    change = StatusChange.objects.get(idea=first_after)
    assert (change.from_status, change.to_status, change.changed_by) == ("open", "in_progress", None)
    assert change.reason.startswith("Catalogue import: catalogue.txt:5")


@pytest.mark.django_db
def test_lower_votes_in_the_file_lower_only_the_imported_part(tmp_path, user):
    path = write(tmp_path, catalogue(("Hypothesis ▲ 5 Open", "A claim", "Body.")))
    run_import(str(path))
    idea_vote(idea=Idea.objects.get(), user=user)

    run_import(str(write(tmp_path, catalogue(("Hypothesis ▲ 2 Open", "A claim", "Body.")))))

    idea = Idea.objects.get()
    assert (idea.imported_votes, idea.score) == (2, 3)


@pytest.mark.django_db
def test_status_words_map_per_kind(tmp_path):
    path = write(
        tmp_path,
        catalogue(
            ("Open-ended ▲ 1 Done", "Finished problem", ""),
            ("Hypothesis ▲ 1 supported", "A supported claim", ""),
            ("hypothesis ▲ 0 IN PROGRESS", "A claim being tested", ""),
            ("Open-ended ▲ 0 Archived", "An old problem", ""),
        ),
    )

    run_import(str(path))

    assert list(Idea.objects.order_by("legacy_number").values_list("status", flat=True)) == [
        "resolved",
        "supported",
        "in_progress",
        "archived",
    ]


GOOD_IDEAS = [
    ("Open-ended ▲ 2 Open", "First idea", "Its body with a [link](https://example.org)."),
    ("Hypothesis ▲ 1 Open", "Second idea", "Another body."),
]


@pytest.mark.parametrize(
    ("bad_line", "title", "expected"),
    [
        ("Experiment ▲ 3 Open", "Third", "unknown kind 'Experiment'; expected Hypothesis or Open-ended"),
        ("Hypothesis ▲ many Open", "Third", "vote count 'many' is not a number"),
        ("Hypothesis ▲ -3 Open", "Third", "vote count -3 is negative"),
        ("Hypothesis ▲ 3 Pending", "Third", "unknown status 'Pending' for a hypothesis idea"),
        ("Hypothesis ▲ 3", "Third", "missing status"),
        ("Hypothesis ▲ 3 Done", "Third", "'Done' is not a status of a hypothesis idea; use Supported, Refuted or"),
        ("Open-ended ▲ 3 Supported", "Third", "unknown status 'Supported' for an open-ended idea"),
    ],
)
@pytest.mark.django_db
def test_a_bad_idea_line_is_refused_with_its_line_and_nothing_is_written(tmp_path, bad_line, title, expected):
    path = write(tmp_path, catalogue(*GOOD_IDEAS, (bad_line, title, "Body.")))
    # Header (4 lines), then 6 lines per idea: the third idea's line is line 17.
    assert path.read_text().splitlines()[16] == bad_line

    with pytest.raises(CommandError) as raised:
        run_import(str(path))

    assert str(raised.value).startswith(f"{path}:17: ")
    assert expected in str(raised.value)
    assert not Idea.objects.exists()
    assert not Collection.objects.exists()


@pytest.mark.django_db
def test_an_idea_without_a_title_is_refused(tmp_path):
    text = catalogue(*GOOD_IDEAS) + "Hypothesis ▲ 3 Open\n\n\n"

    with pytest.raises(CommandError, match=r":17: idea 3 has no title"):
        run_import(str(write(tmp_path, text)))

    assert not Idea.objects.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", ":1: the file is empty"),
        (b"\n  \n", ":1: the file is empty"),
        (b"Some Ideas\n\nIdeas\n\nNothing here.\n", ":1: no ideas found"),
        # UTF-8 up to line 7 (é included), then a Latin-1 é on line 8.
        ("Ideas\n\nOpen-ended ▲ 1 Open\n\nCafé idea\n\nfine\n".encode() + b"caf\xe9 is latin-1\n", ":8: not UTF-8"),
        # Windows line endings, and a Latin-1 é in the title on line 5.
        ("Ideas\r\n\r\nOpen-ended ▲ 1 Open\r\n\r\n".encode() + b"Caf\xe9 idea\r\n", ":5: not UTF-8: byte 0xe9"),
    ],
)
@pytest.mark.django_db
def test_an_unreadable_file_is_refused_with_its_line(tmp_path, content, expected):
    path = write(tmp_path, content)

    with pytest.raises(CommandError) as raised:
        run_import(str(path))

    assert str(raised.value).startswith(f"{path}{expected}")
    assert not Idea.objects.exists()


@pytest.mark.django_db
def test_a_bad_edit_leaves_the_previous_import_untouched(tmp_path):
    run_import(str(write(tmp_path, catalogue(*GOOD_IDEAS))))
    before = snapshot()
    edited = catalogue(
        ("Open-ended ▲ 7 In progress", "First idea, renamed", ""),
        GOOD_IDEAS[1],
        ("Hypothesis ▲ 1 Done", "A new third idea", ""),
    )

    with pytest.raises(CommandError, match=":17: 'Done' is not a status"):
        run_import(str(write(tmp_path, edited)))

    assert snapshot() == before
    assert not StatusChange.objects.exists()


@pytest.mark.django_db
def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot read the file"):
        run_import(str(tmp_path / "nope.txt"))


@pytest.mark.django_db
def test_references_between_ideas_become_links(tmp_path):
    path = write(
        tmp_path,
        catalogue(
            ("Open-ended ▲ 1 Open", "Base problem", "This is an expansion of idea #2. Nothing else."),
            (
                "Hypothesis ▲ 1 Open",
                "A claim",
                "Mostly a duplicate of Idea #1. See also [the other](https://example.org/list/x?a=1&idea=3).",
            ),
            ("Hypothesis ▲ 1 Open", "Another claim", "Unlike idea #3 (itself) and idea #99 (not here)."),
        ),
    )

    output = run_import(str(path))

    links = {(link.source.legacy_number, link.target.legacy_number, link.link_type) for link in IdeaLink.objects.all()}
    assert links == {(1, 2, "expands"), (2, 1, "duplicates"), (2, 3, "relates_to")}
    assert "links added 3 (1 reference to ideas not in the database)" in output
    assert "links added 0" in run_import(str(path))
    assert IdeaLink.objects.count() == 3


@pytest.mark.django_db
def test_references_resolve_to_ideas_already_in_the_database(tmp_path):
    run_import(str(default_catalogue()))
    path = write(tmp_path, catalogue(*GOOD_IDEAS))
    # A second file numbers its ideas 1, 2 as well: it updates those ideas.
    run_import(str(path), "--no-collection")
    assert Idea.objects.count() == 24
    assert Idea.objects.get(legacy_number=1).title == "First idea"


@pytest.mark.django_db
def test_collection_can_be_named(tmp_path):
    path = write(tmp_path, catalogue(*GOOD_IDEAS))

    assert "into collection 'Hackathon'" in run_import(str(path), "--collection", "Hackathon")

    assert list(Collection.objects.values_list("name", flat=True)) == ["Hackathon"]
    assert Collection.objects.get().ideas.count() == 2


@pytest.mark.django_db
def test_collection_can_be_left_out(tmp_path):
    run_import(str(write(tmp_path, catalogue(*GOOD_IDEAS))), "--no-collection")

    assert Idea.objects.count() == 2
    assert not Collection.objects.exists()


@pytest.mark.django_db
def test_import_into_the_header_collection_by_default(tmp_path):
    run_import(str(write(tmp_path, catalogue(*GOOD_IDEAS))))

    assert Collection.objects.get().name == "Test Ideas"
    assert Collection.objects.get().ideas.count() == 2


def test_find_references_reads_the_link_type_from_the_sentence():
    body = (
        "This is an expansion of idea #131 (see below). It expands Idea #7. "
        "Relates to the [other idea](https://aisafetyideas.com/list/x?idea=139). "
        "A duplicate of idea #5! Not idea #5 again."
    )

    assert find_references(body) == [
        Reference(131, "expands"),
        Reference(7, "expands"),
        Reference(139, "relates_to"),
        Reference(5, "duplicates"),
        Reference(5, "relates_to"),
    ]


@pytest.mark.django_db
def test_if_empty_imports_only_into_an_empty_database():
    call_command("import_ideas", "--if-empty", stdout=StringIO())
    assert Idea.objects.count() == 24
    first = Idea.objects.get(legacy_number=1)
    Idea.objects.filter(pk=first.pk).update(title="Edited on the site")
    out = StringIO()
    call_command("import_ideas", "--if-empty", stdout=out)
    assert "already has 24 ideas" in out.getvalue()
    assert Idea.objects.get(pk=first.pk).title == "Edited on the site"
