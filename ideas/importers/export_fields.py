"""The fields of the export format, shared by its JSON and CSV forms.

One record per idea: legacy_number, slug, title, kind, status, votes (the
idea's score when exported), body, tags, collections, and links (each a type
and a target: the target's legacy number, or its slug when it has none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ideas.importers.records import CatalogueError, IdeaRecord, LinkRecord
from ideas.importers.vocabulary import Vocabulary

FIELDS = ("legacy_number", "slug", "title", "kind", "status", "votes", "body", "tags", "collections", "links")
REQUIRED = ("title", "kind", "status", "votes")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


class FieldError(ValueError):
    """A bad value in one field; the reader adds where the record is."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")


def _whole_number(field: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, f"{value!r} is not a whole number")
    if value < minimum:
        raise FieldError(field, f"{value} is less than {minimum}")
    return value


def _text(field: str, value: Any, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise FieldError(field, "is required")
    return value


def _names(field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise FieldError(field, "expected a list of names")
    return tuple(name.strip() for name in value if name.strip())


def _link(value: Any, vocabulary: Vocabulary) -> LinkRecord:
    if not isinstance(value, Mapping) or set(value) != {"type", "target"}:
        raise FieldError("links", f"expected {{'type': ..., 'target': ...}}, got {value!r}")
    try:
        link_type = vocabulary.link_type(_text("links", value["type"], required=True))
    except ValueError as error:
        raise FieldError("links", str(error)) from None
    target = value["target"]
    if isinstance(target, str) and target.strip().isascii() and target.strip().isdigit():
        target = int(target)
    if isinstance(target, int) and not isinstance(target, bool):
        return LinkRecord(link_type=link_type, target=_whole_number("links", target, minimum=1))
    if isinstance(target, str) and SLUG.match(target.strip()):
        return LinkRecord(link_type=link_type, target=target.strip())
    raise FieldError("links", f"target {target!r} is neither a legacy number nor a slug")


def _slug(value: Any) -> str | None:
    slug = _text("slug", value).strip()
    if slug and not SLUG.match(slug):
        raise FieldError("slug", f"{slug!r} is not a slug (letters, digits, '-' and '_')")
    return slug or None


def record_from_fields(fields: Mapping[str, Any], *, where: str, vocabulary: Vocabulary) -> IdeaRecord:
    """Check one record's fields; CatalogueError at `where`, naming the field, on the first bad one."""
    try:
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise FieldError(unknown[0], f"unknown field; the fields are {', '.join(FIELDS)}")
        missing = [name for name in REQUIRED if fields.get(name) in (None, "")]
        if missing:
            raise FieldError(missing[0], "is required")
        try:
            kind = vocabulary.kind(_text("kind", fields["kind"]))
        except ValueError as error:
            raise FieldError("kind", str(error)) from None
        try:
            status = vocabulary.status(_text("status", fields["status"]), kind=kind)
        except ValueError as error:
            raise FieldError("status", str(error)) from None
        legacy_number = fields.get("legacy_number")
        if legacy_number not in (None, ""):
            legacy_number = _whole_number("legacy_number", legacy_number, minimum=1)
        links = fields.get("links") or []
        if not isinstance(links, list):
            raise FieldError("links", "expected a list of links")
        return IdeaRecord(
            where=where,
            title=" ".join(_text("title", fields["title"], required=True).split()),
            kind=kind,
            status=status,
            votes=_whole_number("votes", fields["votes"], minimum=0),
            body=_text("body", fields.get("body")),
            legacy_number=legacy_number or None,
            slug=_slug(fields.get("slug")),
            tags=_names("tags", fields.get("tags")),
            collections=_names("collections", fields.get("collections")),
            links=tuple(_link(link, vocabulary) for link in links),
        )
    except FieldError as error:
        raise CatalogueError(where, str(error)) from None


def fields_from_record(record: IdeaRecord) -> dict[str, Any]:
    """The export form of a record (JSON-ready: lists, ints, strings, None)."""
    return {
        "legacy_number": record.legacy_number,
        "slug": record.slug,
        "title": record.title,
        "kind": record.kind,
        "status": record.status,
        "votes": record.votes,
        "body": record.body,
        "tags": list(record.tags or ()),
        "collections": list(record.collections or ()),
        "links": [{"type": link.link_type, "target": link.target} for link in record.links],
    }
