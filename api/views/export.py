"""/api/ideas/export/?format=csv|json: every idea matching the list's filters, in one file.

The file is the catalogue export `manage.py export_ideas` writes (`ideas.services.catalogue_export`:
the same fields and writer), so `import_ideas` reads it back.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer

from api.filters import IdeaFilterQuerySerializer, parse_query
from api.renderers import CSVRenderer
from api.schema import error_responses
from api.serializers.export import ExportDocumentSerializer
from api.views.base import ApiView
from ideas.selectors import idea_list
from ideas.services import catalogue_export


class IdeaExport(ApiView):
    permission_classes = [AllowAny]
    renderer_classes = [CSVRenderer, JSONRenderer]
    query_serializer_class = IdeaFilterQuerySerializer

    @extend_schema(
        operation_id="ideas_export",
        summary="Export ideas as CSV or JSON",
        description="The list's filters, no pages, in the list's order, as the catalogue file `manage.py "
        "export_ideas` writes and `manage.py import_ideas` reads: legacy number, slug, title, kind, status, "
        "votes (the score), body, tags, collections and links. `format=csv` (the default) or `format=json`. "
        "In CSV, names and links are joined with ';', and a cell that a spreadsheet would run as a formula "
        "starts with an apostrophe (the importer takes it off again).",
        parameters=[IdeaFilterQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per idea, with a header."),
            (200, "application/json"): OpenApiResponse(ExportDocumentSerializer),
            **error_responses(),
        },
    )
    def get(self, request):
        filters = parse_query(IdeaFilterQuerySerializer, request.query_params).to_filters()
        ideas = idea_list(filters=filters, user=request.user)
        renderer = request.accepted_renderer
        try:
            text = catalogue_export(file_format=renderer.format, ideas=ideas)
        except ValueError as error:  # a name CSV cannot hold
            raise ValidationError({"format": [str(error)]}) from None
        content_type = renderer.media_type + (f"; charset={renderer.charset}" if renderer.format == "csv" else "")
        response = HttpResponse(text.encode("utf-8"), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="ideas.{renderer.format}"'
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):  # errors are JSON, whatever format was asked for
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
