"""The text catalogue format (see ideas/fixtures/ai_safety_ideas.txt).

    AI Safety Ideas            <- header: the first line names the catalogue
                               <- (the rest of the header, e.g. "Ideas", is ignored)
    Ideas

    Open-ended ▲ 6 Open        <- <Kind> ▲ <votes> <Status>
    Investigate how ...        <- the title: the next non-blank line
    How do 3-layer ...         <- the body (markdown): everything up to the next idea line

Ideas are numbered 1, 2, ... in file order; that number is the idea's legacy
number. References in a body ("idea #131", "?idea=139") become links.

The seed catalogue was exported with its bodies flattened (lists joined by
" - ", headings run in by "## "); `restore_markdown` puts that structure back,
changing only white space. The file names no tags: each idea gets the ones its
words clearly point to (`derive_tags`), as derived tags.
"""

from __future__ import annotations

import re

from ideas.importers.decoding import decode_utf8
from ideas.importers.derived_tags import derive_tags
from ideas.importers.records import Catalogue, CatalogueError, IdeaRecord, LinkRecord
from ideas.importers.references import find_references
from ideas.importers.structure import restore_markdown
from ideas.importers.vocabulary import Vocabulary

# A line is an idea line when one word and a ▲ start it; what follows is checked
# field by field, so a bad vote count or status is reported, not read as body text.
IDEA_LINE = re.compile(r"^\s*(?P<kind>[^\s▲]+)\s*▲(?P<rest>.*)$")
VOTES = re.compile(r"^\d+$")


def _votes(word: str, line: int) -> int:
    if not word:
        raise CatalogueError(line, "missing vote count after ▲")
    if not VOTES.match(word):
        if re.match(r"^-\d+$", word):
            raise CatalogueError(line, f"vote count {word} is negative")
        raise CatalogueError(line, f"vote count {word!r} is not a number")
    return int(word)


def _idea_header(match: re.Match[str], line: int, vocabulary: Vocabulary) -> tuple[str, int, str]:
    try:
        kind = vocabulary.kind(match["kind"])
    except ValueError as error:
        raise CatalogueError(line, str(error)) from None
    votes_word, status_word = [*match["rest"].split(None, 1), "", ""][:2]
    votes = _votes(votes_word, line)
    if not status_word.strip():
        raise CatalogueError(line, "missing status after the vote count")
    try:
        status = vocabulary.status(status_word, kind=kind)
    except ValueError as error:
        raise CatalogueError(line, str(error)) from None
    return kind, votes, status


def _record(number: int, first_line: int, lines: list[str], start: int, end: int, vocabulary: Vocabulary) -> IdeaRecord:
    """The idea whose idea line is lines[start] and whose text runs up to (not including) lines[end]."""
    kind, votes, status = _idea_header(IDEA_LINE.match(lines[start]), first_line, vocabulary)
    rest = lines[start + 1 : end]
    title_at = next((i for i, text in enumerate(rest) if text.strip()), None)
    if title_at is None:
        raise CatalogueError(first_line, f"idea {number} has no title: expected a title line after this one")
    title = " ".join(rest[title_at].split())
    body = restore_markdown("\n".join(rest[title_at + 1 :]).strip("\n"))
    links = tuple(
        LinkRecord(link_type=vocabulary.link_type(ref.link_type), target=ref.legacy_number)
        for ref in find_references(body)
    )
    return IdeaRecord(
        where=str(first_line),
        title=title,
        kind=kind,
        status=status,
        votes=votes,
        body=body,
        legacy_number=number,
        derived_tags=derive_tags(title, body),
        links=links,
    )


def parse_text(data: bytes, *, vocabulary: Vocabulary) -> Catalogue:
    """Parse a text catalogue; CatalogueError (with the line) on the first problem."""
    text = decode_utf8(data)
    if not text.strip():
        raise CatalogueError(1, "the file is empty")
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if IDEA_LINE.match(line)]
    if not starts:
        raise CatalogueError(1, "no ideas found: an idea starts with a line like 'Open-ended ▲ 6 Open'")
    header = [line.strip() for line in lines[: starts[0]] if line.strip()]
    records = tuple(
        _record(number, start + 1, lines, start, end, vocabulary)
        for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines)], strict=True), start=1)
    )
    return Catalogue(file_format="text", records=records, name=header[0] if header else None)
