"""Prompt sets: an uploaded JSONL or CSV file read as records, checked against the fields it declares.

`dataset_upload` streams the file first (size limit, UTF-8, no NUL: the checks every dataset gets), then
hands the received file here. Each record must give every declared field a non-empty value that is a
string, a number or a boolean; extra fields are kept. The records are written normalized, one JSON
object of strings a line (`items.jsonl`), which is what the engine reads
(`experiments.engine.evals.prompt_sets`). Every refusal is a ValidationError naming `file` (with the
line number and the field) or `fields`.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError

from experiments.models import DatasetFormat
from ideas.text import has_visible_text

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_FIELDS = 16
MAX_RECORDS = 100_000
MAX_VALUE_CHARS = 20_000  # one value: far more than any prompt a model reads, far less than Python's csv limit
FORMAT_BY_SUFFIX = {".jsonl": DatasetFormat.JSONL, ".csv": DatasetFormat.CSV}
# A value may span lines (a quoted CSV cell, "\n" in JSON) and hold tabs; other control characters are refused.
ALLOWED_CONTROLS = frozenset("\n\t\r")


def format_clean(raw: Any, filename: str) -> str:
    """The dataset's format: the one given, or (when none is) the file name's extension (.jsonl, .csv), else text."""
    if raw in (None, ""):
        return FORMAT_BY_SUFFIX.get(Path(filename).suffix.lower(), DatasetFormat.TEXT)
    if raw not in DatasetFormat.values:
        raise ValidationError({"format": f"Choose one of {', '.join(DatasetFormat.values)}."})
    return str(raw)


def fields_clean(raw: Any, dataset_format: str) -> list[str]:
    """The declared fields of a prompt set (a list, or names separated by commas), or a ValidationError naming
    `fields`: required for a prompt set, not allowed for text, each a lower-case name, at most 16, no repeats."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list | tuple) and all(isinstance(part, str) for part in raw):
        # Each part may itself hold several names separated by commas (one form field, or repeated API parts).
        names = [name.strip() for part in raw for name in part.split(",") if name.strip()]
    elif raw is None:
        names = []
    else:
        raise ValidationError({"fields": "Give the field names as a list of strings or separated by commas."})
    if dataset_format == DatasetFormat.TEXT:
        if names:
            raise ValidationError({"fields": "Only a prompt set (format jsonl or csv) declares fields."})
        return []
    if not names:
        raise ValidationError(
            {"fields": "Declare the fields every record has, separated by commas (e.g. statement, label)."}
        )
    if len(names) > MAX_FIELDS:
        raise ValidationError({"fields": f"At most {MAX_FIELDS} fields (this has {len(names)})."})
    bad = [name for name in names if not FIELD_NAME.match(name)]
    if bad:
        raise ValidationError(
            {
                "fields": f"{', '.join(repr(name) for name in bad)}: a field name is a lower-case letter, then up "
                "to 31 lower-case letters, digits or underscores."
            }
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError({"fields": f"Declared more than once: {', '.join(repeated)}."})
    return names


def records_write(source: Path, out: IO[str], *, dataset_format: str, fields: list[str]) -> int:
    """Read the received file `source` as records, check each, and write them normalized to `out`; the count.

    A ValidationError naming `file` says which line and which field is wrong, at the first problem.
    """
    n_records = 0
    with source.open(encoding="utf-8-sig", newline="") as text:  # a byte-order mark is tolerated
        records = _jsonl_records(text) if dataset_format == DatasetFormat.JSONL else _csv_records(text, fields)
        for line, record in records:
            n_records += 1
            if n_records > MAX_RECORDS:
                raise _refuse(f"line {line}: more than {MAX_RECORDS:,} records, the most a prompt set may have.")
            out.write(json.dumps(_normalized(record, fields, line), ensure_ascii=False) + "\n")
    if n_records == 0:
        raise _refuse("The prompt set has no records.")
    return n_records


def _refuse(message: str) -> ValidationError:
    return ValidationError({"file": message})


def _jsonl_records(text: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line."""
    for line, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.rstrip("\r\n"), parse_constant=_no_constant)
        except json.JSONDecodeError as exc:  # its own line and column are within this one line
            raise _refuse(f"line {line}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
        except ValueError as exc:  # NaN or Infinity
            raise _refuse(f"line {line}: not valid JSON ({exc}).") from None
        except RecursionError:
            raise _refuse(f"line {line}: the JSON is nested too deeply.") from None
        if not isinstance(record, dict):
            raise _refuse(f"line {line}: each line must be a JSON object ({{...}}), not {_json_type(record)}.")
        yield line, record


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _csv_records(text: IO[str], fields: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank row after the header; the line is where the row ends."""
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise _refuse("The prompt set has no records.")
    columns = [name.strip() for name in header]
    if "" in columns:
        column = columns.index("") + 1
        raise _refuse(f"line {reader.line_num}: the header row has an empty column name (column {column}).")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise _refuse(f"line {reader.line_num}: the header row names {', '.join(map(repr, repeated))} more than once.")
    missing = [name for name in fields if name not in columns]
    if missing:
        raise _refuse(
            f"line {reader.line_num}: the header row has no column {', '.join(map(repr, missing))} "
            f"(it has {', '.join(columns)})."
        )
    for row in _checked_rows(reader):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            raise _refuse(f"line {reader.line_num}: {len(row)} cells, more than the header's {len(columns)} columns.")
        yield reader.line_num, dict(zip(columns, row, strict=False))  # a short row lacks its last columns


def _checked_rows(reader) -> Iterator[list[str]]:
    """The reader's rows, with a malformed row (a cell over the csv module's size limit, a stray quote in strict
    files) refused naming its line, not raised as a csv.Error."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _refuse(f"line {reader.line_num}: not valid CSV ({exc}).") from None


def _normalized(record: dict[str, Any], fields: list[str], line: int) -> dict[str, str]:
    """The record with every value a string: the declared fields checked, the extra ones kept."""
    for name in fields:
        if name not in record:
            raise _refuse(f"line {line}: the record has no {name!r}.")
    normalized = {}
    for key, value in record.items():
        declared = key in fields
        if declared and not isinstance(value, str | int | float | bool):
            raise _refuse(f"line {line}: {key!r} must be a string, a number or true/false, not {_json_type(value)}.")
        text = _as_text(value)
        if len(text) > MAX_VALUE_CHARS:
            raise _refuse(f"line {line}: {key!r} holds {len(text):,} characters; a value may hold {MAX_VALUE_CHARS:,}.")
        if declared and not text.strip():
            raise _refuse(f"line {line}: {key!r} is empty.")
        if declared and not has_visible_text(text):
            raise _refuse(f"line {line}: {key!r} has only invisible characters.")
        if any(unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROLS for ch in text):
            raise _refuse(f"line {line}: {key!r} contains a control character.")
        normalized[str(key)] = text.strip() if declared else text
    return normalized


def _as_text(value: Any) -> str:
    """A value as the string the engine reads: booleans "true"/"false", numbers their JSON text, null "",
    a list or object (allowed in extra fields) its JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return "a number"
