"""`restore_markdown`: the seed catalogue's flattened lists and headings, put back."""

from __future__ import annotations

import re

import pytest

import ideas.importers.text as text_reader
from ideas.importers import Catalogue, parse_text
from ideas.importers.structure import restore_markdown
from ideas.management.commands.import_ideas import default_catalogue
from ideas.rendering import render_markdown
from ideas.services.catalogue import VOCABULARY

# The shipped ideas whose bodies hold two or more " - " items or a "## " mid-paragraph.
RESTORED = {1, 3, 4, 5, 8, 9, 15, 21, 23, 24}


def shipped(*, restored: bool, monkeypatch: pytest.MonkeyPatch) -> Catalogue:
    """The shipped catalogue as the text reader reads it, with or without restoring its structure."""
    with monkeypatch.context() as patch:
        if not restored:
            patch.setattr(text_reader, "restore_markdown", lambda body: body)
        return parse_text(default_catalogue().read_bytes(), vocabulary=VOCABULARY)


@pytest.fixture
def bodies(monkeypatch) -> list[tuple[int, str, str]]:
    """(legacy number, body as exported, body restored) for every shipped idea."""
    flat = shipped(restored=False, monkeypatch=monkeypatch).records
    restored = shipped(restored=True, monkeypatch=monkeypatch).records
    return [(a.legacy_number, a.body, b.body) for a, b in zip(flat, restored, strict=True)]


def test_every_shipped_body_keeps_all_its_words_in_order(bodies):
    assert len(bodies) == 24
    for number, flat, restored in bodies:
        assert re.findall(r"\w+", restored) == re.findall(r"\w+", flat), number
        # Stronger: only white space changed, every mark included.
        assert restored.split() == flat.split(), number


def test_the_shipped_bodies_with_flattened_structure_are_restored_and_only_those(bodies):
    assert {number for number, flat, restored in bodies if restored != flat} == RESTORED


def test_restoring_a_restored_body_changes_nothing(bodies):
    for number, _, restored in bodies:
        assert restore_markdown(restored) == restored, number


def test_the_first_idea_becomes_a_question_and_a_list(bodies):
    restored = bodies[0][2]

    assert restored.split("\n\n") == [
        "How do 3-layer and 4-layer attention-only models differ from 2L?",
        "- Look for composition scores\n"
        "- Look for evidence of composition. E.g. one head’s output represents a big fraction of the norm of "
        "another heads query, key or value vector\n"
        "- Do the “PCA of logits on a fixed set of random tokens” technique and look for more kinks.\n"
        "- Can you associate these with circuits?\n"
        "- Ablate a single head and run the model on a lot of text. Look at the change in performance. Find the "
        "most important heads. Do any heads matter a lot that are not induction heads?",
    ]


def test_the_ioi_idea_gets_its_headings_and_lists_back(bodies):
    restored = bodies[7][2]
    lines = restored.split("\n")

    assert "## Ideas for new tasks" in lines
    assert "## Ideas for extensions of the original paper" in lines
    assert "Possible simple tasks to interpret can be:" in lines
    backup = "- Backup name mover heads: Normally not active but activates to write John if the name mover heads"
    assert f"{backup} do not activate" in lines
    assert "- 3 letter acronyms (or more!)" in lines
    # "is working on this - feel free to reach out": a dash in prose, not an item.
    assert lines[-1].endswith("is working on this - feel free to reach out to arthur@rdwrs.com")
    html = render_markdown(restored)
    assert "<h2>Ideas for new tasks</h2>" in html
    assert html.count("<ul>") == 3
    assert "<li>Negative name mover heads: Avoids copying specific name tokens</li>" in html


def test_a_heading_ends_at_its_question_mark_and_a_single_dash_stays_in_the_text(bodies):
    restored = bodies[8][2]

    assert restored.split("\n\n") == [
        "E.g, finetune GPT-2 Small on Wikipedia. Compare the model's internal activations before and after, "
        "compare attention patterns, etc.",
        "## What happens when you fine-tune a model?",
        "How does model performance change on other text? Are specific circuits harmed or is worse across the "
        "board? Hypothesis: Fine-tuning is just rewiring and upweighting vs downweighting circuits that already "
        "exist, rather than building new circuits. - A similar hard problem is examining what happens with chain "
        "of thought prompting. That, though, is really hard because chain of thought prompting only happens in "
        "GPT-3+ sized models.",
    ]


@pytest.mark.parametrize(
    ("flat", "restored"),
    [
        ("Lead-in: - First - Second", "Lead-in:\n\n- First\n- Second"),
        ("- First - Second", "- First\n- Second"),
        (
            "Tasks: - 3 letter acronyms - [A link](https://a.org)",
            "Tasks:\n\n- 3 letter acronyms\n- [A link](https://a.org)",
        ),
        ("Text before ## A heading Then text after.", "Text before\n\n## A heading\n\nThen text after."),
        ("Text ## Why? - One - Two", "Text\n\n## Why?\n\n- One\n- Two"),
        ("First paragraph.\n\nSecond: - A - B", "First paragraph.\n\nSecond:\n\n- A\n- B"),
    ],
)
def test_clear_patterns_are_restored(flat, restored):
    assert restore_markdown(flat) == restored


@pytest.mark.parametrize(
    "body",
    [
        "Attention-only models, 2-layer and 3-layer ones, and state-of-the-art - all hyphenated.",
        "One aside - It is a single dash, so it stays.",
        "Train 1 - 2 layers and 3 - 4 heads.",
        "Lower case - after the dash - is prose, not a list.",
        "Links: [A - B](https://example.org/a) and [C - D](https://example.org/c).",
        "Code: `x - Y` and `z - W`.",
        "A paragraph written - Over two lines\n- Is not flattened - Left alone.",
        "- Already a list\n- Of two items",
        "## A heading at the start - Is markdown - Already",
        "Too long ## a heading that runs on for more than twelve words without any end in sight",
        "Before ## heading? > would start a quote",
        "",
    ],
)
def test_unclear_patterns_are_left_alone(body):
    assert restore_markdown(body) == body
