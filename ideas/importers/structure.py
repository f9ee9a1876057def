"""Putting back the lists and headings the seed catalogue lost when it was exported.

The seed's bodies were flattened: every paragraph became one line, its list
items joined by " - " and its headings run into the text by "## ":

    ...the special heads they found: - Negative name mover heads: ... - Backup name
    mover heads: ... do not activate ## Ideas for new tasks Possible simple tasks ...

`restore_markdown` turns that back into markdown, and acts only where the
pattern is clear:

- Only a paragraph that is one line and reads as prose is looked at. A
  paragraph written over several lines was not flattened, and one that starts
  like a markdown block (a heading, quote, table, list item other than "- ",
  code) already has its structure.
- "## " (up to "###### ") after other text starts a heading on its own line.
  The heading runs to its first clear end: a word ending in ? ! . or : (kept in
  the heading), the next list item, the next heading, the end of the paragraph,
  or a word that starts the next sentence (a capital followed by a lower-case
  letter, after the heading's first word: the seed's headings are in sentence
  case). A heading longer than 12 words has no clear end, and its "## " is left
  in the text.
- " - " marks a list item when what follows starts a sentence (a capital
  letter, a digit, an opening bracket, quote or emphasis), unless it stands
  between two digits (a range, "1 - 2") or inside a link's text or a code span.
  Text with two or more such markers becomes a list, the text before the first
  one a paragraph before it. One marker is a dash in prose ("it is working on
  this - Feel free ...") and is left alone, as are hyphenated words and dashes
  followed by a lower-case word.

Only white space changes: every word, mark and character stays, in order,
so `restored.split() == body.split()`. The flattening lost nesting, so nested
items come back as one flat list, and text after a list's last item stays in
that item.
"""

from __future__ import annotations

import re

# Blank lines between paragraphs; kept as they are.
PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n)")
# How a line that already has markdown structure starts.
MARKDOWN_BLOCK_START = re.compile(r"[ \t]|#|>|\||```|~~~|[-*+][ \t]|\d+[.)][ \t]")
# Link and image texts, link targets and code spans: no marker inside them counts.
PROTECTED = re.compile(r"!?\[[^\]\n]*\]\([^)\s]*\)|`[^`\n]+`")

HEADING_START = re.compile(r"(?<=\s)(#{2,6}) +(?=\S)")
HEADING_MAX_WORDS = 12
HEADING_LAST_WORD = re.compile(r"[?!.:]$")
NEXT_SENTENCE_WORD = re.compile(r"^[A-Z][a-z]")

ITEM_MARKER = re.compile(r"(?:(?<=\s)|^)-[ \t]+(?=\S)")
ITEM_FIRST_CHARACTER = re.compile(r"[A-Z0-9\[(\"'“‘*_`!]")


def _protected_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in PROTECTED.finditer(text)]


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _item_markers(text: str) -> list[re.Match[str]]:
    """The " - " in `text` that start list items (see the module docstring)."""
    spans = _protected_spans(text)
    markers = []
    for match in ITEM_MARKER.finditer(text):
        after = text[match.end()]
        before = text[: match.start()].rstrip()[-1:]
        if not ITEM_FIRST_CHARACTER.match(after) or _inside(match.start(), spans):
            continue
        if before.isdigit() and after.isdigit():
            continue  # a range: "1 - 2"
        markers.append(match)
    return markers


def _as_list(text: str) -> str:
    """`text` as a lead-in paragraph and a list when it has two or more item markers; else unchanged."""
    markers = _item_markers(text)
    if len(markers) < 2:
        return text
    lead_in = text[: markers[0].start()].strip()
    ends = [marker.start() for marker in markers[1:]] + [len(text)]
    items = [f"- {text[marker.end() : end].strip()}" for marker, end in zip(markers, ends, strict=True)]
    return "\n\n".join([*([lead_in] if lead_in else []), "\n".join(items)])


def _heading_end(text: str, start: int, limit: int) -> int | None:
    """Where the heading whose text starts at text[start] ends (at most `limit`); None when that is unclear."""
    end = limit
    for number, word in enumerate(re.finditer(r"\S+", text[start:limit])):
        if number > 0 and NEXT_SENTENCE_WORD.match(word.group()):
            end = start + word.start()
            break
        if HEADING_LAST_WORD.search(word.group()):
            end = start + word.end()
            break
    words = len(text[start:end].split())
    # What follows must read as text: a line starting with "#" or "> " would become markdown of its own.
    follows = text[end:limit].lstrip()
    if not 0 < words <= HEADING_MAX_WORDS or MARKDOWN_BLOCK_START.match(follows):
        return None
    return end


def _restore_line(line: str) -> str:
    """One flattened paragraph as markdown blocks: text (a list where it has one), headings between them."""
    spans = _protected_spans(line)
    markers = [marker.start() for marker in _item_markers(line)]
    headings = [match for match in HEADING_START.finditer(line) if not _inside(match.start(), spans)]
    blocks: list[str] = []
    position = 0
    for match in headings:
        if match.start() < position:
            continue
        later = [at for at in markers if at > match.end()] + [h.start() for h in headings if h.start() > match.end()]
        end = _heading_end(line, match.end(), min([*later, len(line)]))
        if end is None:
            continue
        blocks.append(_as_list(line[position : match.start()].strip()))
        blocks.append(f"{match.group(1)} {line[match.end() : end].strip()}")
        position = end
    blocks.append(_as_list(line[position:].strip()))
    return "\n\n".join(block for block in blocks if block)


def restore_markdown(body: str) -> str:
    """`body` with its flattened lists and headings restored as markdown; only white space changes."""
    parts = PARAGRAPH_BREAK.split(body)
    for index in range(0, len(parts), 2):  # even indexes are paragraphs, odd ones the breaks between them
        paragraph = parts[index]
        # A "- " item is read on: "- A - B" is a flattened list too.
        prose = not MARKDOWN_BLOCK_START.match(paragraph) or paragraph.startswith("- ")
        if paragraph and "\n" not in paragraph and prose:
            parts[index] = _restore_line(paragraph)
    return "".join(parts)
