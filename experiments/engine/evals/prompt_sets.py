"""Prompt sets by reference: an uploaded JSONL or CSV set, or one of the small sets the project ships.

A prompt set is a list of records, each a dict of strings (a statement and its label, an action and its
category, a request). Params name a set the way they name a text corpus:

- `{"source": "prompt_set", "dataset": <id>}`: a set someone uploaded at /datasets/. The platform checked it on
  upload (every declared field present and non-empty in every record) and stored it normalized, one JSON
  object of strings a line; the resolver's `prompt_set_path` finds that file.
- `{"source": "shipped", "name": ...}`: a set in `sets/`, written by hand for this project (`sets/README.md`
  says how). There is no shipped set of harmful requests: `refusal_rate` runs on one the user uploads, with a
  `request` field.

`load_items` reads either, in file order, and refuses a set that lacks a field the kind needs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from experiments.engine.datasets import DatasetNotAvailable, DatasetResolver
from experiments.engine.errors import EngineError
from experiments.engine.params import KindParams
from experiments.engine.types import RecordId

SETS_DIR = Path(__file__).with_name("sets")


class PromptSetProblem(EngineError):
    """A prompt set that cannot serve the kind: it lacks a field the kind needs, or its file is not records."""


class PromptSetRef(KindParams):
    """An uploaded prompt set."""

    source: Literal["prompt_set"] = "prompt_set"
    dataset: RecordId = Field(description="The id of an uploaded prompt set (JSONL or CSV).")


class ShippedPromptSet(KindParams):
    """A prompt set the project ships."""

    source: Literal["shipped"] = "shipped"
    name: Literal["true_false_statements", "everyday_actions"] = Field(description="Which shipped set.")


PromptSource = Annotated[PromptSetRef | ShippedPromptSet, Field(discriminator="source")]


@dataclass(frozen=True)
class ShippedSet:
    """A set in `sets/`: its file, the fields every record has, and one line on how it was made."""

    name: str
    path: Path
    fields: tuple[str, ...]
    about: str
    n_records: int


def _count_records(path: Path) -> int:
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())


def _shipped(name: str, fields: tuple[str, ...], about: str) -> ShippedSet:
    path = SETS_DIR / f"{name}.jsonl"
    return ShippedSet(name=name, path=path, fields=fields, about=about, n_records=_count_records(path))


SHIPPED: dict[str, ShippedSet] = {
    shipped.name: shipped
    for shipped in (
        _shipped(
            "true_false_statements",
            ("statement", "label", "category"),
            "Everyday factual statements written by hand for this project, half clearly true and half clearly "
            "false (a plain error anyone with schooling would spot), none contested or time-sensitive.",
        ),
        _shipped(
            "everyday_actions",
            ("action", "category"),
            'Everyday actions written by hand for this project to fit "It is okay to {action}, isn\'t it?": half '
            "benign, half dubious (mildly unethical conduct, nothing violent or graphic).",
        ),
    )
}


def load_items(
    ref: PromptSetRef | ShippedPromptSet, resolver: DatasetResolver | None, *, fields: Sequence[str]
) -> list[dict[str, str]]:
    """The set's records in file order, each a dict of strings, once every record has each of `fields`.

    Raises PromptSetProblem naming the missing field(s) when the set lacks one the kind needs, and
    DatasetNotAvailable when an uploaded set cannot be found or is not a prompt set.
    """
    if isinstance(ref, ShippedPromptSet):
        path = SHIPPED[ref.name].path
        what = f"The shipped prompt set {ref.name!r}"
    else:
        if resolver is None:
            raise DatasetNotAvailable("This context cannot look up uploaded datasets.")
        path = resolver.prompt_set_path(ref.dataset)
        what = f"Prompt set {ref.dataset}"
    items = _read_records(path, what)
    # The fields the whole set has: those of the first record that every other record has too.
    common = [name for name in items[0] if all(name in item for item in items)]
    missing = [name for name in fields if name not in common]
    if missing:
        raise PromptSetProblem(
            f"{what} has fields {', '.join(common)}; this kind needs {', '.join(repr(name) for name in missing)}."
        )
    return items


def _read_records(path: Path, what: str) -> list[dict[str, str]]:
    """Every non-blank line of a normalized set as a dict of strings; PromptSetProblem for anything else."""
    items = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict) or not all(isinstance(v, str) for v in record.values()):
                    raise PromptSetProblem(f"{what}, line {number}: not a JSON object of strings.")
                items.append(record)
    except OSError as exc:
        raise DatasetNotAvailable(f"{what} cannot be read: {exc.strerror or exc}.") from None
    except ValueError as exc:  # JSON or UTF-8: the file was changed behind the platform's back
        raise PromptSetProblem(f"{what} is not a normalized prompt set: {exc}.") from None
    if not items:
        raise PromptSetProblem(f"{what} has no records.")
    return items
