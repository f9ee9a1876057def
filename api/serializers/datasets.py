"""Uploaded text datasets as the API shows them, and what a caller sends to upload one.

The upload is checked for shape here; `experiments.services.dataset_upload` checks the
file itself (UTF-8, no NUL, not empty, not too large) and has the last word.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.fields import TextField
from experiments.models import Dataset
from experiments.services import user_can_delete_dataset
from experiments.services.datasets import DESCRIPTION_MAX, NAME_MAX

REFERENCE_SCHEMA = {
    "type": "object",
    "properties": {
        "source": {"type": "string", "enum": ["text_corpus"]},
        "dataset": {"type": "integer"},
    },
    "required": ["source", "dataset"],
}


class DatasetSerializer(serializers.ModelSerializer):
    """An uploaded UTF-8 text corpus. Expects datasets from `experiments.selectors.dataset_list`."""

    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, allow_null=True)
    size = serializers.IntegerField(read_only=True, help_text="Bytes.")
    sha256 = serializers.CharField(read_only=True, help_text="Of the file's bytes.")
    filename = serializers.CharField(read_only=True, help_text="The uploaded file's own name.")
    reference = serializers.SerializerMethodField(
        help_text='What a spec\'s params name to use it, e.g. as `data`: {"source": "text_corpus", "dataset": 3} '
        '(add "tokenizer": "char" or "bpe", and "vocab_size").'
    )
    can_delete = serializers.SerializerMethodField(help_text="Whether the caller may delete it.")

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "description",
            "filename",
            "size",
            "sha256",
            "n_characters",
            "n_lines",
            "uploaded_by",
            "created_at",
            "reference",
            "can_delete",
        ]
        read_only_fields = fields

    @extend_schema_field(REFERENCE_SCHEMA)
    def get_reference(self, dataset: Dataset) -> dict[str, Any]:
        return dataset.reference

    def get_can_delete(self, dataset: Dataset) -> bool:
        request = self.context.get("request")
        return user_can_delete_dataset(getattr(request, "user", None), dataset)


class DatasetUploadSerializer(serializers.Serializer):
    """multipart/form-data: `name`, `file`, and optionally `description`."""

    name = TextField(max_length=NAME_MAX)
    description = TextField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX, default="")
    # Empty files are let through here so the service's message ("The file is empty.") is the one given.
    file = serializers.FileField(allow_empty_file=True, help_text="A UTF-8 text file without NUL characters.")


class DatasetPageSerializer(serializers.Serializer):
    """One page of the dataset list."""

    count = serializers.IntegerField(help_text="All datasets.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = DatasetSerializer(many=True)
