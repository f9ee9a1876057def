"""CSV as a format the API can be asked for (`?format=csv` or `Accept: text/csv`)."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """text/csv. The export writes its CSV itself (the catalogue's writer, which also keeps cells from
    becoming spreadsheet formulas); this renderer lets content negotiation choose CSV and passes text through."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        return data.encode(self.charset) if isinstance(data, str) else bytes(data or b"")
