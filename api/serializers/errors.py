"""The error body, for the schema (api.exceptions builds it)."""

from __future__ import annotations

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="A stable machine code: invalid, not_authenticated, permission_denied...")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='400 only: each offending field (dotted for list items, "tags.0") and its messages.',
    )
