"""`derive_tags`: tags read from an idea's title and body, where the match is clear."""

from __future__ import annotations

import pytest
from django.utils.text import slugify

from ideas.importers.derived_tags import TAG_RULES, derive_tags
from ideas.models import Tag


def test_a_word_in_the_title_is_enough():
    assert derive_tags("Investigate grokking in small models", "Nothing else here.") == (
        "grokking",
        "training dynamics",
    )


def test_two_mentions_in_the_body_are_needed():
    once = "We look at one circuit in a small model."
    twice = "We look at one circuit, then at the neurons it reads from."

    assert derive_tags("A title", once) == ()
    assert derive_tags("A title", twice) == ("interpretability",)


def test_words_match_whole_and_in_any_case():
    assert derive_tags("Circuitry, LLMsXL and grokkingly", "Redteaming. Redteaming.") == ()
    assert derive_tags("the ioi task", "") == ("IOI",)
    assert derive_tags("Testing llms", "") == ("LLM evaluations",)


def test_link_addresses_are_not_read():
    body = (
        "See [this post](https://example.org/a-mechanistic-interpretability-analysis-of-grokking) "
        "and https://example.org/interpretability/circuits."
    )

    assert derive_tags("A title", body) == ()


def test_link_texts_are_read():
    body = "Read [the IOI paper](https://example.org/x) and [IOI notes](https://example.org/y)."

    assert derive_tags("A title", body) == ("IOI",)


@pytest.mark.parametrize("rule", TAG_RULES, ids=lambda rule: rule.name)
def test_every_tag_name_fits_the_tag_model(rule):
    assert len(rule.name) <= Tag._meta.get_field("name").max_length
    assert 0 < len(slugify(rule.name)) <= Tag._meta.get_field("slug").max_length


def test_tag_names_have_distinct_slugs():
    slugs = [slugify(rule.name) for rule in TAG_RULES]

    assert len(slugs) == len(set(slugs))
