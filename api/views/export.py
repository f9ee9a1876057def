"""/api/ideas/export/?format=csv|json: every idea matching the list's filters, in one file."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.filters import IdeaFilterQuerySerializer, parse_query
from api.renderers import CSVRenderer
from api.schema import error_responses
from api.serializers.ideas import IdeaSummarySerializer
from api.views.base import ApiView
from ideas.selectors import idea_list


class IdeaExport(ApiView):
    permission_classes = [AllowAny]
    renderer_classes = [CSVRenderer, JSONRenderer]
    query_serializer_class = IdeaFilterQuerySerializer
    csv_header = IdeaSummarySerializer.Meta.fields

    @extend_schema(
        operation_id="ideas_export",
        summary="Export ideas as CSV or JSON",
        description="The list's filters, no pages. `format=csv` (the default) or `format=json`; lists (tags, "
        "collections) are joined with '; ' in CSV. CSV cells that a spreadsheet would run as a formula "
        "start with an apostrophe.",
        parameters=[IdeaFilterQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per idea, with a header."),
            (200, "application/json"): OpenApiResponse(IdeaSummarySerializer(many=True)),
            **error_responses(),
        },
    )
    def get(self, request):
        filters = parse_query(IdeaFilterQuerySerializer, request.query_params).to_filters()
        ideas = idea_list(filters=filters, user=request.user)
        data = IdeaSummarySerializer(ideas, many=True, context=self.get_serializer_context()).data
        filename = f"ideas.{request.accepted_renderer.format}"
        return Response(data, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):  # errors are JSON, whatever format was asked for
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
