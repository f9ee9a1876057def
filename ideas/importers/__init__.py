"""Reading idea catalogues, in plain Python (no Django models here).

Three formats: the text catalogue the project started from (`text`), and the
JSON and CSV forms of `export_ideas` (`export_fields` says what a record
holds; `ideas.exporters` writes them). Every reader returns a `Catalogue` of `IdeaRecord`s or raises
`CatalogueError` saying where the first problem is; nothing here touches the
database, so `ideas.services.catalogue` can check a whole file before writing.
"""

from __future__ import annotations

from pathlib import PurePath

from ideas.importers.csv_format import read_csv
from ideas.importers.export_fields import FIELDS
from ideas.importers.json_format import read_json
from ideas.importers.records import Catalogue, CatalogueError, IdeaRecord, LinkRecord
from ideas.importers.text import parse_text
from ideas.importers.vocabulary import Vocabulary

READERS = {"text": parse_text, "json": read_json, "csv": read_csv}


def detect_format(data: bytes, *, filename: str = "") -> str:
    """ "json" or "csv" by the file's extension, else by its first characters; "text" otherwise."""
    extension = PurePath(filename).suffix.lower().lstrip(".")
    if extension in ("json", "csv"):
        return extension
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start[:1] in (b"{", b"["):
        return "json"
    first_line = start.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if first_line.split(",")[0].strip('"') in FIELDS and "," in first_line:
        return "csv"
    return "text"


def read_catalogue(data: bytes, *, vocabulary: Vocabulary, filename: str = "", file_format: str = "") -> Catalogue:
    """Parse `data` in `file_format` (detected when empty); CatalogueError on the first problem."""
    return READERS[file_format or detect_format(data, filename=filename)](data, vocabulary=vocabulary)


__all__ = [
    "FIELDS",
    "READERS",
    "Catalogue",
    "CatalogueError",
    "IdeaRecord",
    "LinkRecord",
    "Vocabulary",
    "detect_format",
    "parse_text",
    "read_catalogue",
    "read_csv",
    "read_json",
]
