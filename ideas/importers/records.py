"""What every catalogue reader produces: plain records, and the error they raise.

A record says what one idea should look like after the import. `None` in
`tags` or `collections` means the source says nothing about them (the text
catalogue), so an import leaves them as they are. `derived_tags` are tags a
reader worked out from the idea's words (the text catalogue's, see
`derived_tags`): an import adds them beside `tags` and never removes a tag
for their sake.
"""

from __future__ import annotations

from dataclasses import dataclass


class CatalogueError(ValueError):
    """A catalogue that cannot be imported: `where` is a line number or "record N"."""

    def __init__(self, where: int | str, reason: str) -> None:
        self.where = str(where)
        self.reason = reason
        super().__init__(f"{self.where}: {reason}")


@dataclass(frozen=True)
class LinkRecord:
    """An outgoing link: its type, and the target's legacy number (int) or slug (str)."""

    link_type: str
    target: int | str


@dataclass(frozen=True)
class IdeaRecord:
    where: str  # line number or "record N", for error messages and status-change reasons
    title: str
    kind: str
    status: str
    votes: int
    body: str = ""
    legacy_number: int | None = None
    slug: str | None = None
    tags: tuple[str, ...] | None = None
    derived_tags: tuple[str, ...] = ()
    collections: tuple[str, ...] | None = None
    links: tuple[LinkRecord, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    """A parsed file: its records, its format, and its name (the text header's first line)."""

    file_format: str  # "text", "json" or "csv"
    records: tuple[IdeaRecord, ...]
    name: str | None = None
