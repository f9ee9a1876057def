"""What a caller sends to create or edit an idea; the services check it again and have the last word."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.fields import TextField
from ideas.models import Collection, Idea, IdeaKind, Tag

TITLE_MAX = Idea._meta.get_field("title").max_length
BODY_MAX = 100_000
NAMES_MAX = 50


def _names(max_length: int, help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=TextField(max_length=max_length), max_length=NAMES_MAX, required=False, help_text=help_text
    )


class IdeaCreateSerializer(serializers.Serializer):
    title = TextField(max_length=TITLE_MAX)
    kind = serializers.ChoiceField(choices=IdeaKind.choices)
    body = TextField(required=False, allow_blank=True, trim_whitespace=False, max_length=BODY_MAX, default="")
    tags = _names(Tag._meta.get_field("name").max_length, "Tag names; missing tags are created.")
    collections = _names(Collection._meta.get_field("name").max_length, "Collection names; missing ones are created.")


class IdeaUpdateSerializer(serializers.Serializer):
    """Every field optional: what is left out stays as it is. `tags`/`collections` replace the lists."""

    title = TextField(required=False, max_length=TITLE_MAX)
    kind = serializers.ChoiceField(choices=IdeaKind.choices, required=False)
    body = TextField(required=False, allow_blank=True, trim_whitespace=False, max_length=BODY_MAX)
    tags = _names(Tag._meta.get_field("name").max_length, "Tag names (replaces the idea's tags).")
    collections = _names(
        Collection._meta.get_field("name").max_length, "Collection names (replaces the idea's collections)."
    )
