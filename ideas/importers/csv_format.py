"""Reading the CSV form of the export: one row per idea, a header row naming the fields.

Tags and collections are `;`-separated names; links are `type:target` pairs
separated by `;` (`expands:131;relates_to:some-slug`). Errors give the line a
record starts on and its record number. (`ideas.exporters.csv_format` writes it.)

A text cell a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
`@`, a tab or a carriage return: OWASP "CSV injection") is written with an
apostrophe in front, and the reader takes one off again, so the file opens
safely and still reads back exactly. A cell of apostrophes before such a start
gets one more, so a text that really starts `'=` survives too.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from ideas.importers.decoding import decode_utf8
from ideas.importers.export_fields import FIELDS, REQUIRED, record_from_fields
from ideas.importers.records import Catalogue, CatalogueError
from ideas.importers.vocabulary import Vocabulary

SEPARATOR = ";"
FORMULA = re.compile(r"'*[=+\-@\t\r]")


def escaped(value: Any) -> Any:
    """A text cell as written: an apostrophe in front when a spreadsheet would run it (numbers stay)."""
    return "'" + value if isinstance(value, str) and FORMULA.match(value) else value


def _unescaped(value: str | None) -> str | None:
    return value[1:] if value and value.startswith("'") and FORMULA.match(value, 1) else value


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(SEPARATOR) if part.strip()]


def _fields_from_row(row: dict[str, Any]) -> dict[str, Any]:
    row = {name: _unescaped(value) for name, value in row.items()}
    fields = {name: value for name, value in row.items() if name in FIELDS}
    fields["tags"] = _split(row.get("tags"))
    fields["collections"] = _split(row.get("collections"))
    links = []
    for pair in _split(row.get("links")):
        link_type, colon, target = pair.partition(":")
        links.append({"type": link_type, "target": target} if colon else pair)
    fields["links"] = links
    return fields


def read_csv(data: bytes, *, vocabulary: Vocabulary) -> Catalogue:
    """Read a CSV export; CatalogueError with the line and record number on the first bad record."""
    text = decode_utf8(data)
    if not text.strip():
        raise CatalogueError(1, "the file is empty")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
        unknown = [name for name in header if name not in FIELDS]
        missing = [name for name in REQUIRED if name not in header]
        if unknown or missing:
            problem = f"unknown column {unknown[0]!r}" if unknown else f"missing column {missing[0]!r}"
            raise CatalogueError(1, f"{problem}; the columns are {', '.join(FIELDS)}")
        records = []
        start = reader.line_num + 1
        for number, row in enumerate(reader, start=1):
            if None in row:
                raise CatalogueError(start, f"record {number}: more values than columns")
            try:
                records.append(record_from_fields(_fields_from_row(row), where=str(start), vocabulary=vocabulary))
            except CatalogueError as error:
                raise CatalogueError(start, f"record {number}, {error.reason}") from None
            start = reader.line_num + 1
    except csv.Error as error:
        raise CatalogueError(reader.line_num, f"not valid CSV: {error}") from None
    if not records:
        raise CatalogueError(1, "no ideas found")
    return Catalogue(file_format="csv", records=tuple(records))
