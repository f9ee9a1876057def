"""The idea list's rows built as plain dicts, the shape `IdeaSummarySerializer` documents.

`IdeaSummarySerializer` stays the schema (OpenAPI) and serializes the export and the detail; the list
endpoint builds the same dicts from `ideas.selectors.idea_list_rows` rows with one function call per
idea, where the serializer ran a field object per value (18 per idea, 50 ideas a page).
tests/api/test_idea_rows.py holds the two to the same output, field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from api.serializers.idea_urls import IdeaAddresses

# DRF's own field, for any timestamp the quick path below does not cover.
_DATETIME = serializers.DateTimeField()


def _timestamp_writer() -> Callable[[datetime], str]:
    """A timestamp as DRF's DateTimeField writes it (in the current time zone, ISO 8601, "Z" for UTC), with the
    time zone looked up once per page rather than twice per row; anything but an aware datetime goes to DRF."""
    zone = _DATETIME.default_timezone()
    drf = _DATETIME.to_representation
    output_format = getattr(_DATETIME, "format", api_settings.DATETIME_FORMAT)
    if zone is None or output_format is None or output_format.lower() != ISO_8601:
        return drf

    def write(value: datetime) -> str:
        if not isinstance(value, datetime) or not timezone.is_aware(value):
            return drf(value)
        try:
            text = value.astimezone(zone).isoformat()
        except OverflowError:
            return drf(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return write


def summary_rows(rows: list[dict], context: dict) -> list[dict]:
    """Each row (completed by `ideas.selectors.idea_rows_complete`) as `IdeaSummarySerializer` gives it."""
    addresses = IdeaAddresses.for_context(context)
    timestamp = _timestamp_writer()
    return [
        {
            "id": row["id"],
            "legacy_number": row["legacy_number"],
            "slug": row["slug"],
            "title": row["title"],
            "kind": row["kind"],
            "status": row["status"],
            "score": row["score"],
            "voted": row["voted"],
            "author": row["author__username"],
            "tags": row["tags"],
            "collections": row["collections"],
            "experiment_count": row["experiment_count"],
            "run_count": row["run_count"],
            "latest_verdict": row["latest_verdict"],
            "url": addresses.api_url(row["id"]),
            "page_url": addresses.page_url(row["id"], row["slug"]),
            "created_at": timestamp(row["created_at"]),
            "updated_at": timestamp(row["updated_at"]),
        }
        for row in rows
    ]
