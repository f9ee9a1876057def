"""References from one idea's body to others, the way the catalogue writes them.

"idea #131", "Idea #7", and links to the catalogue site with `?idea=139` or
`&idea=139`. The sentence around a reference says what kind of link it is:
"expansion of" / "expands" -> `expands`, "duplicate of" -> `duplicates`,
anything else -> `relates_to`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ideas.rendering import IDEA_REFERENCE

IDEA_URL_REFERENCE = re.compile(r"[?&]idea=(\d{1,7})\b")
# A sentence ends at . ! or ? followed by white space, or at a line break; dots
# inside URLs and numbers are not followed by a space, so they do not end one.
SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
LINK_TYPE_CUES = (
    ("duplicates", re.compile(r"\bduplicate of\b", re.IGNORECASE)),
    ("expands", re.compile(r"\b(expansion of|expands)\b", re.IGNORECASE)),
)
DEFAULT_LINK_TYPE = "relates_to"


@dataclass(frozen=True)
class Reference:
    legacy_number: int
    link_type: str


def _sentence_around(text: str, start: int, end: int) -> str:
    begin = 0
    for match in SENTENCE_END.finditer(text, 0, start):
        begin = match.end()
    after = SENTENCE_END.search(text, end)
    return text[begin : after.start() if after else len(text)]


def link_type_of(sentence: str) -> str:
    for link_type, cue in LINK_TYPE_CUES:
        if cue.search(sentence):
            return link_type
    return DEFAULT_LINK_TYPE


def find_references(body: str) -> list[Reference]:
    """Every idea the body points at, once per (number, link type), in order of appearance."""
    matches = sorted(
        [*IDEA_REFERENCE.finditer(body), *IDEA_URL_REFERENCE.finditer(body)],
        key=lambda m: m.start(),
    )
    found: list[Reference] = []
    for match in matches:
        reference = Reference(
            legacy_number=int(match.group(1)),
            link_type=link_type_of(_sentence_around(body, match.start(), match.end())),
        )
        if reference not in found:
            found.append(reference)
    return found
