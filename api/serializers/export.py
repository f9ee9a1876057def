"""The export's JSON document, for the schema only: the body is written by `ideas.services.catalogue_export`,
the same writer as `manage.py export_ideas`, so `import_ideas` reads it back."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ideas.importers.json_format import FORMAT_NAME, VERSION
from ideas.models import IdeaKind, IdeaStatus, LinkType


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]})
class LinkTargetField(serializers.Field):
    """The linked idea's legacy number, or its slug when it has none."""


class ExportLinkSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=LinkType.choices)
    target = LinkTargetField()


class ExportIdeaSerializer(serializers.Serializer):
    legacy_number = serializers.IntegerField(allow_null=True, min_value=1)
    slug = serializers.CharField(allow_null=True)
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=IdeaKind.choices)
    status = serializers.ChoiceField(choices=IdeaStatus.choices)
    votes = serializers.IntegerField(min_value=0, help_text="The idea's score when exported.")
    body = serializers.CharField(allow_blank=True, help_text="Markdown.")
    tags = serializers.ListField(child=serializers.CharField())
    collections = serializers.ListField(child=serializers.CharField())
    links = ExportLinkSerializer(many=True, help_text="This idea's links to others.")


class ExportDocumentSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=[FORMAT_NAME])
    version = serializers.ChoiceField(choices=[VERSION])
    ideas = ExportIdeaSerializer(many=True)
