"""Input fields shared by the write serializers."""

from __future__ import annotations

from rest_framework import serializers


class TextField(serializers.CharField):
    """A CharField that refuses text the database cannot store (lone surrogates; NUL is refused by DRF)."""

    default_error_messages = {"unencodable": "Contains characters that are not valid Unicode text."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("unencodable")
        return value
