"""The idea list's rows built as plain dicts, the shape `IdeaSummarySerializer` documents.

`IdeaSummarySerializer` stays the schema (OpenAPI) and serializes the export and the detail; the list
endpoint builds the same dicts from `ideas.selectors.idea_list_rows` rows with one function call per
idea, where the serializer ran a field object per value (18 per idea, 50 ideas a page).
tests/api/test_idea_rows.py holds the two to the same output, field by field.
"""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.idea_urls import IdeaAddresses

# DRF's own field, so a timestamp reads exactly as the serializer writes it (time zone, format, "Z").
_DATETIME = serializers.DateTimeField()


def summary_rows(rows: list[dict], context: dict) -> list[dict]:
    """Each row (completed by `ideas.selectors.idea_rows_complete`) as `IdeaSummarySerializer` gives it."""
    addresses = IdeaAddresses.for_context(context)
    timestamp = _DATETIME.to_representation
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
