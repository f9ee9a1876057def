"""Writing the JSON form of the export (`ideas.importers.json_format` reads it)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ideas.importers.export_fields import fields_from_record
from ideas.importers.json_format import FORMAT_NAME, VERSION
from ideas.importers.records import IdeaRecord


def write_json(records: Iterable[IdeaRecord]) -> str:
    document = {"format": FORMAT_NAME, "version": VERSION, "ideas": [fields_from_record(r) for r in records]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
