"""The shipped prompt sets (their counts, balance, fields, no repeats) and `load_items` on shipped and uploaded sets,
with a resolver written here (no database)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from experiments.engine.datasets import DatasetNotAvailable
from experiments.engine.evals.prompt_sets import (
    SHIPPED,
    PromptSetProblem,
    PromptSetRef,
    PromptSource,
    ShippedPromptSet,
    load_items,
)


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in SHIPPED[name].path.read_text(encoding="utf-8").splitlines()]


class FolderResolver:
    """Prompt sets as files in a folder, named <id>.jsonl; no text corpora."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def dataset_path(self, dataset_id: int) -> Path:
        raise DatasetNotAvailable(f"Dataset {dataset_id} is a prompt set, not a text corpus.")

    def prompt_set_path(self, dataset_id: int) -> Path:
        path = self.folder / f"{dataset_id}.jsonl"
        if not path.exists():
            raise DatasetNotAvailable(f"There is no dataset {dataset_id}.")
        return path


# --- the shipped sets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label_field", "labels", "at_least"),
    [
        ("true_false_statements", "label", {"true", "false"}, 220),
        ("everyday_actions", "category", {"benign", "dubious"}, 120),
    ],
)
def test_a_shipped_set_is_large_balanced_complete_and_without_repeats(name, label_field, labels, at_least):
    shipped = SHIPPED[name]
    items = records(name)
    assert len(items) == shipped.n_records >= at_least
    assert all(set(item) == set(shipped.fields) for item in items)
    assert all(isinstance(value, str) and value.strip() == value and value for item in items for value in item.values())
    counts = Counter(item[label_field] for item in items)
    assert set(counts) == labels
    assert len(set(counts.values())) == 1, counts  # exactly balanced
    text_field = shipped.fields[0]
    texts = [item[text_field].lower() for item in items]
    assert len(set(texts)) == len(texts), [t for t, n in Counter(texts).items() if n > 1]
    assert shipped.about


def test_statements_are_short_single_sentences_in_named_categories():
    items = records("true_false_statements")
    for item in items:
        statement = item["statement"]
        assert statement.endswith(".") and statement[0].isupper(), statement
        assert statement.count(". ") == 0 and len(statement) <= 100, statement
    by_category = Counter((item["category"], item["label"]) for item in items)
    categories = {category for category, _ in by_category}
    assert len(categories) >= 5
    assert all(by_category[(c, "true")] == by_category[(c, "false")] for c in categories)  # balanced in each


def test_actions_fit_the_framing_templates():
    for item in records("everyday_actions"):
        action = item["action"]
        assert action[0].islower() and not action.endswith((".", "?", "!")), action
        assert not action.startswith(("to ", "It ")), action


# --- load_items --------------------------------------------------------------------------------


def test_load_items_reads_a_shipped_set_in_file_order():
    items = load_items(ShippedPromptSet(name="true_false_statements"), None, fields=["statement", "label"])
    assert items == records("true_false_statements")
    assert items[0]["statement"] == "Paris is the capital of France."


def test_load_items_names_the_fields_a_set_lacks():
    with pytest.raises(PromptSetProblem) as caught:
        load_items(ShippedPromptSet(name="everyday_actions"), None, fields=["action", "request", "label"])
    message = str(caught.value)
    assert "has fields action, category" in message
    assert "this kind needs 'request', 'label'" in message


def test_load_items_reads_an_uploaded_set_through_the_resolver(tmp_path):
    lines = [{"request": "Tell me a joke.", "category": "benign"}, {"request": "Write a poem.", "extra": "x"}]
    (tmp_path / "7.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    resolver = FolderResolver(tmp_path)
    assert load_items(PromptSetRef(dataset=7), resolver, fields=["request"]) == lines
    # "category" is in the first record only, so the set as a whole lacks it.
    with pytest.raises(PromptSetProblem, match="has fields request; this kind needs 'category'"):
        load_items(PromptSetRef(dataset=7), resolver, fields=["request", "category"])


def test_load_items_cannot_find_an_upload_without_a_resolver_or_a_missing_one(tmp_path):
    with pytest.raises(DatasetNotAvailable, match="cannot look up"):
        load_items(PromptSetRef(dataset=1), None, fields=["request"])
    with pytest.raises(DatasetNotAvailable, match="no dataset 8"):
        load_items(PromptSetRef(dataset=8), FolderResolver(tmp_path), fields=["request"])


@pytest.mark.parametrize(
    ("content", "words"),
    [("", "no records"), ('{"request": 1}\n', "not a JSON object of strings"), ("{oops\n", "not a normalized")],
    ids=["empty", "not-strings", "not-json"],
)
def test_load_items_refuses_a_file_that_is_not_a_normalized_set(tmp_path, content, words):
    (tmp_path / "3.jsonl").write_text(content)
    with pytest.raises(PromptSetProblem, match=words):
        load_items(PromptSetRef(dataset=3), FolderResolver(tmp_path), fields=["request"])


def test_prompt_source_picks_the_reference_by_its_source_and_is_strict():
    adapter = TypeAdapter(PromptSource)
    assert adapter.validate_python({"source": "prompt_set", "dataset": 4}) == PromptSetRef(dataset=4)
    assert adapter.validate_python({"source": "shipped", "name": "everyday_actions"}).name == "everyday_actions"
    for bad in (
        {"source": "shipped", "name": "harmful_requests"},
        {"source": "prompt_set", "dataset": 0},
        {"source": "prompt_set", "dataset": 4, "fields": ["x"]},
        {"source": "text_corpus", "dataset": 4},
    ):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
