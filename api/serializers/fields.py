"""Input fields shared by the write serializers.

JSON bodies are taken at their word: a string field takes only a JSON string, a
boolean only true/false, an integer only a whole JSON number (not true, not "3",
not 3.0), a number only a JSON number, an id only an integer. DRF's own fields
coerce ("0" -> False, 0 -> "0", true -> 1), which hides callers' bugs and stores
what nobody meant. Form bodies (multipart uploads) carry only strings, so there the
fields keep DRF's parsing.
"""

from __future__ import annotations

from typing import Any

from django.utils.datastructures import MultiValueDict
from rest_framework import serializers


def is_form_body(field: serializers.Field) -> bool:
    """Whether the field is reading a form body (a QueryDict from a multipart or urlencoded request)."""
    return isinstance(getattr(field.root, "initial_data", None), MultiValueDict)


def is_json_integer(data: Any) -> bool:
    return isinstance(data, int) and not isinstance(data, bool)


class TextField(serializers.CharField):
    """A string and nothing else, that the database can store (no lone surrogates; DRF refuses NUL)."""

    default_error_messages = {
        "not_a_string": "Must be a string.",
        "unencodable": "Contains characters that are not valid Unicode text.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        value = super().to_internal_value(data)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("unencodable")
        return value


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"not_a_boolean": "Must be true or false (a JSON boolean)."}

    def to_internal_value(self, data):
        if not isinstance(data, bool) and not is_form_body(self):
            self.fail("not_a_boolean")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"not_an_integer": "Must be an integer (a JSON number without a fraction)."}

    def to_internal_value(self, data):
        if not is_json_integer(data) and not is_form_body(self):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"not_a_number": "Must be a number (a JSON number, not a string)."}

    def to_internal_value(self, data):
        if (isinstance(data, bool) or not isinstance(data, int | float)) and not is_form_body(self):
            self.fail("not_a_number")
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An id given as a JSON integer (DRF also takes "5")."""

    default_error_messages = {"not_an_id": "Must be an id (a JSON integer)."}

    def to_internal_value(self, data):
        if not is_json_integer(data) and not is_form_body(self):
            self.fail("not_an_id")
        return super().to_internal_value(data)
