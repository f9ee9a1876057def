"""/api/datasets/: uploaded datasets (text corpora, prompt sets), listed, uploaded (multipart), read and deleted."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from api.filters import PageQuerySerializer, parse_query
from api.pagination import ExperimentPagination
from api.schema import error_responses, not_found
from api.serializers.datasets import DatasetPageSerializer, DatasetSerializer, DatasetUploadSerializer
from api.serializers.errors import ErrorSerializer
from api.views.base import ApiView
from experiments.models import Dataset
from experiments.selectors import dataset_get, dataset_list
from experiments.services import dataset_delete, dataset_upload

NO_DATASET = "No dataset with this id."
NOT_MULTIPART = {
    (415, "application/json"): OpenApiResponse(
        ErrorSerializer, description="The body is not multipart/form-data (send the file as a form upload)."
    )
}


class DatasetRendering(ApiView):
    def get_dataset(self, pk: int) -> Dataset:
        try:
            return dataset_get(pk=pk)
        except Dataset.DoesNotExist:
            raise NotFound(f"No dataset with id {pk}.") from None

    def render_dataset(self, dataset: Dataset, *, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(DatasetSerializer(dataset, context=self.get_serializer_context()).data, status=status_code)


class DatasetListCreate(DatasetRendering):
    query_serializer_class = PageQuerySerializer
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="datasets_list",
        summary="List uploaded datasets",
        description="Newest first, a page at a time. Each says how a spec references it (`reference`).",
        parameters=[PageQuerySerializer],
        responses={200: DatasetPageSerializer, **error_responses(404), **not_found("A page past the end.")},
    )
    def get(self, request):
        parse_query(PageQuerySerializer, request.query_params)
        paginator = ExperimentPagination()
        page = paginator.paginate_queryset(dataset_list(), request, view=self)
        data = DatasetSerializer(page, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="datasets_create",
        summary="Upload a dataset (a text corpus or a prompt set)",
        description="Needs a login; the caller becomes its uploader. A multipart/form-data body with `name`, "
        "`file` and optionally `description`, `format` and `fields`. The file must be UTF-8 without NUL characters, "
        f"not empty, and at most DATASET_MAX_BYTES (default {settings.DATASET_MAX_BYTES:,} bytes); otherwise a 400 "
        "names `file` and says what is wrong (for bad UTF-8: the byte offset and line). Specs then use a text "
        'corpus as `{"source": "text_corpus", "dataset": <id>}`. A prompt set (`format` jsonl or csv, or a file '
        "named .jsonl or .csv) declares `fields` that every record has with a non-empty string, number or "
        "boolean value: JSONL is one JSON object a line, e.g. "
        '`{"statement": "Water boils at 100 degrees Celsius at sea level.", "label": "true"}`, CSV a header row '
        "naming the columns; at most 100,000 records. A record that lacks a field is a 400 naming `file`, the line "
        'and the field. Specs use it as `{"source": "prompt_set", "dataset": <id>}`.',
        request={"multipart/form-data": DatasetUploadSerializer},
        responses={201: DatasetSerializer, **error_responses(403), **NOT_MULTIPART},
    )
    def post(self, request):
        data = self.parse_body(DatasetUploadSerializer, request)
        dataset = dataset_upload(
            user=request.user,
            name=data["name"],
            description=data["description"],
            uploaded_file=data["file"],
            format=data.get("format"),
            fields=data.get("fields"),
        )
        return self.render_dataset(self.get_dataset(dataset.pk), status_code=status.HTTP_201_CREATED)


class DatasetDetail(DatasetRendering):
    def get_permissions(self):
        return [AllowAny()] if self.request.method in ("GET", "HEAD", "OPTIONS") else [IsAuthenticated()]

    @extend_schema(
        operation_id="datasets_retrieve",
        summary="Get a dataset",
        description="Its name, description, format (and a prompt set's fields and records), size, hash, characters "
        "and lines, uploader, and `reference`.",
        responses={200: DatasetSerializer, **error_responses(404), **not_found(NO_DATASET)},
    )
    def get(self, request, pk: int):
        return self.render_dataset(self.get_dataset(pk))

    @extend_schema(
        operation_id="datasets_destroy",
        summary="Delete a dataset",
        description="Its uploader or staff (403 for others). The file and its tokenization caches go with it. "
        "While queued or running runs reference it, a 409 names them. Specs that name it stay, but running "
        "them is a 400 until they name a dataset that exists.",
        responses={204: None, **error_responses(403, 404, 409), **not_found(NO_DATASET)},
    )
    def delete(self, request, pk: int):
        dataset_delete(dataset=self.get_dataset(pk), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
