"""CSV output for the export: one row per idea, lists joined with "; "."""

from __future__ import annotations

import csv
import io
from typing import Any

from rest_framework.renderers import BaseRenderer

# A cell starting with one of these is a formula to a spreadsheet; a leading
# apostrophe keeps it text (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)  # numbers (a score of -3) are not formulas
    if isinstance(value, list):
        value = "; ".join(str(item.get("name", item)) if isinstance(item, dict) else str(item) for item in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class CSVRenderer(BaseRenderer):
    """A list of flat dicts (lists of {"name": ...} allowed) as CSV with a header row.

    The header is the view's `csv_header` (so an empty export still has one), else the first row's keys.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        rows = data if isinstance(data, list) else [data]
        view = (renderer_context or {}).get("view")
        header = list(getattr(view, "csv_header", None) or (rows[0] if rows else []))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(row.get(name)) for name in header])
        return out.getvalue().encode(self.charset)
