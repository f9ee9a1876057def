"""The words a catalogue uses for kinds, statuses and link types, and the values they mean.

The importers never import Django models: the service hands them a
`Vocabulary` built from `ideas.models`, so the two cannot drift apart. Words
are matched case-insensitively, with spaces and hyphens read as underscores
("In progress" -> `in_progress`, "Open-ended" -> `open_ended`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The catalogue's "Done" means an open-ended idea is resolved. A hypothesis is
# never just done: it ended supported, refuted or inconclusive.
DONE = "done"
DONE_MEANS = "resolved"
NOT_AN_OUTCOME = ("open", "in_progress", "archived")


def as_value(word: str) -> str:
    return "_".join(str(word).split()).lower().replace("-", "_")


def kind_label(kind: str) -> str:
    return kind.replace("_", "-").capitalize()


def status_label(status: str) -> str:
    return status.replace("_", " ").capitalize()


def an_idea_of(kind: str) -> str:
    """ "a hypothesis idea", "an open-ended idea"."""
    label = kind_label(kind).lower()
    return f"{'an' if label[:1] in 'aeiou' else 'a'} {label} idea"


def _either(labels: Sequence[str]) -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


@dataclass(frozen=True)
class Vocabulary:
    statuses_by_kind: Mapping[str, Sequence[str]]
    link_types: Sequence[str]

    def kind(self, word: str) -> str:
        """The kind `word` names; ValueError with the reason when it names none."""
        value = as_value(word)
        if value not in self.statuses_by_kind:
            expected = _either([kind_label(k) for k in self.statuses_by_kind])
            raise ValueError(f"unknown kind {word!r}; expected {expected}")
        return value

    def status(self, word: str, *, kind: str) -> str:
        """The status of a `kind` idea that `word` names; ValueError with the reason otherwise."""
        value = as_value(word)
        allowed = self.statuses_by_kind[kind]
        if value == DONE and DONE_MEANS in allowed:
            return DONE_MEANS
        if value == DONE:
            outcomes = _either([status_label(s) for s in allowed if s not in NOT_AN_OUTCOME])
            raise ValueError(f"'Done' is not a status of {an_idea_of(kind)}; use {outcomes}")
        if value not in allowed:
            expected = _either([status_label(s) for s in allowed])
            raise ValueError(f"unknown status {word!r} for {an_idea_of(kind)}; expected {expected}")
        return value

    def link_type(self, word: str) -> str:
        value = as_value(word)
        if value not in self.link_types:
            raise ValueError(f"unknown link type {word!r}; expected {_either(list(self.link_types))}")
        return value
