"""Writing the CSV form of the export (`ideas.importers.csv_format` reads it and says what a row holds)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from ideas.importers.csv_format import SEPARATOR, escaped
from ideas.importers.export_fields import FIELDS, fields_from_record
from ideas.importers.records import IdeaRecord


def _joined(field: str, names: Iterable[str]) -> str:
    names = list(names)
    for name in names:
        if SEPARATOR in name:
            raise ValueError(f"{field} {name!r} contains {SEPARATOR!r}, which CSV uses between names; export JSON")
    return SEPARATOR.join(names)


def write_csv(records: Iterable[IdeaRecord]) -> str:
    """The CSV text; ValueError when a name contains the separator (JSON keeps those intact)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = fields_from_record(record)
        row["legacy_number"] = row["legacy_number"] or ""
        row["slug"] = row["slug"] or ""
        row["tags"] = _joined("tag", row["tags"])
        row["collections"] = _joined("collection", row["collections"])
        row["links"] = SEPARATOR.join(f"{link['type']}:{link['target']}" for link in row["links"])
        writer.writerow({name: escaped(value) for name, value in row.items()})
    return out.getvalue()
