"""Reading the JSON form of the export: {"format": ..., "version": 1, "ideas": [record, ...]}.

A bare list of records is read too. Records are numbered from 1 in errors.
(`ideas.exporters.json_format` writes it.)
"""

from __future__ import annotations

import json

from ideas.importers.decoding import decode_utf8
from ideas.importers.export_fields import record_from_fields
from ideas.importers.records import Catalogue, CatalogueError
from ideas.importers.vocabulary import Vocabulary

FORMAT_NAME = "ai-safety-ideas-catalogue"
VERSION = 1


def read_json(data: bytes, *, vocabulary: Vocabulary) -> Catalogue:
    """Read a JSON export; CatalogueError with the line (syntax) or "record N" (content)."""
    text = decode_utf8(data)
    if not text.strip():
        raise CatalogueError(1, "the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CatalogueError(error.lineno, f"not valid JSON: {error.msg}") from None
    if isinstance(document, dict):
        if document.get("format", FORMAT_NAME) != FORMAT_NAME or document.get("version", VERSION) != VERSION:
            raise CatalogueError(1, f"not a {FORMAT_NAME} version {VERSION} export")
        document = document.get("ideas")
    if not isinstance(document, list):
        raise CatalogueError(1, 'expected a list of ideas, or an object with an "ideas" list')
    if not document:
        raise CatalogueError(1, "no ideas found")
    records = []
    for number, fields in enumerate(document, start=1):
        where = f"record {number}"
        if not isinstance(fields, dict):
            raise CatalogueError(where, f"expected an object, got {type(fields).__name__}")
        records.append(record_from_fields(fields, where=where, vocabulary=vocabulary))
    return Catalogue(file_format="json", records=tuple(records))
