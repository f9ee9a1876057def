"""Uploaded datasets (text corpora and prompt sets) as the API shows them, and what a caller sends to upload one.

The upload is checked for shape here; `experiments.services.dataset_upload` checks the
file itself (UTF-8, no NUL, not empty, not too large; a prompt set's records against its
declared fields) and has the last word.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.fields import TextField
from experiments.models import Dataset, DatasetFormat
from experiments.services import user_can_delete_dataset
from experiments.services.datasets import DESCRIPTION_MAX, NAME_MAX

REFERENCE_SCHEMA = {
    "type": "object",
    "properties": {
        "source": {"type": "string", "enum": ["text_corpus", "prompt_set"]},
        "dataset": {"type": "integer"},
    },
    "required": ["source", "dataset"],
}


class DatasetSerializer(serializers.ModelSerializer):
    """An uploaded text corpus or prompt set. Expects datasets from `experiments.selectors.dataset_list`."""

    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, allow_null=True)
    size = serializers.IntegerField(read_only=True, help_text="Bytes.")
    sha256 = serializers.CharField(read_only=True, help_text="Of the file's bytes.")
    filename = serializers.CharField(read_only=True, help_text="The uploaded file's own name.")
    format = serializers.ChoiceField(
        choices=DatasetFormat.choices, read_only=True, help_text="text (a corpus), or jsonl or csv (a prompt set)."
    )
    fields = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="A prompt set's declared fields; [] for text."
    )
    n_records = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="A prompt set's records; null for text."
    )
    reference = serializers.SerializerMethodField(
        help_text='What a spec\'s params name to use it, e.g. as `data`: {"source": "text_corpus", "dataset": 3} '
        '(add "tokenizer": "char" or "bpe", and "vocab_size"); a prompt set: {"source": "prompt_set", "dataset": 4}.'
    )
    can_delete = serializers.SerializerMethodField(help_text="Whether the caller may delete it.")

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "description",
            "filename",
            "format",
            "fields",
            "n_records",
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
    """multipart/form-data: `name`, `file`, and optionally `description`, `format` and (a prompt set) `fields`."""

    name = TextField(max_length=NAME_MAX)
    description = TextField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX, default="")
    # Empty files are let through here so the service's message ("The file is empty.") is the one given.
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="A UTF-8 file without NUL characters: text, or a prompt set (JSONL: one JSON object a line; "
        "CSV: a header row naming the columns).",
    )
    format = serializers.ChoiceField(
        choices=DatasetFormat.choices,
        required=False,
        allow_blank=True,
        help_text="text, jsonl or csv; when left out, the file name's extension decides (.jsonl, .csv, else text).",
    )
    # Repeated `fields` parts, or one part of names separated by commas; the service checks the names.
    fields = serializers.ListField(
        child=serializers.CharField(allow_blank=True, max_length=1000),
        required=False,
        max_length=64,
        help_text="A prompt set's declared fields, which every record must have with a non-empty value: repeat "
        "the part, or separate names by commas (statement,label).",
    )


class DatasetPageSerializer(serializers.Serializer):
    """One page of the dataset list."""

    count = serializers.IntegerField(help_text="All datasets.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = DatasetSerializer(many=True)
