"""/api/runs/: runs (filtered, paged), one run with everything it recorded, cancelling, artifact downloads."""

from __future__ import annotations

from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from api.filters import RunListQuerySerializer, parse_query
from api.pagination import ExperimentPagination
from api.schema import error_responses, not_found
from api.serializers.experiments import (
    RunDetailQuerySerializer,
    RunDetailSerializer,
    RunPageSerializer,
    RunSeriesPollSerializer,
    RunSummarySerializer,
)
from api.views.base import ApiView
from experiments.downloads import ArtifactNotFound, artifact_download
from experiments.models import ExperimentRun
from experiments.selectors import run_get, run_list
from experiments.services import run_cancel

NO_RUN = "No run with this id."
NAME_PARAMETER = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The artifact's name.")


class RunRendering(ApiView):
    def get_run(self, pk: int) -> ExperimentRun:
        try:
            return run_get(pk=pk)
        except ExperimentRun.DoesNotExist:
            raise NotFound(f"No run with id {pk}.") from None

    def render_run(self, run: ExperimentRun) -> Response:
        return Response(RunDetailSerializer(run, context=self.get_serializer_context()).data)


class RunList(ApiView):
    permission_classes = [AllowAny]
    query_serializer_class = RunListQuerySerializer

    @extend_schema(
        operation_id="runs_list",
        summary="List runs",
        description="The runs page's filters (`kind`, `status`, `idea`, `spec`, `user`) and orderings (`ordering`, "
        "e.g. `-metric:final_loss`; newest first by default). Each run as on its own page, without the step "
        "series and manifest. Unknown parameters, values, ids, kinds and users are a 400 naming them.",
        parameters=[RunListQuerySerializer],
        responses={200: RunPageSerializer, **error_responses(404), **not_found("A page past the end.")},
    )
    def get(self, request):
        filters = parse_query(RunListQuerySerializer, request.query_params).to_filters()
        runs = run_list(filters=filters)
        paginator = ExperimentPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        data = RunSummarySerializer(page, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)


class RunDetail(RunRendering):
    permission_classes = [AllowAny]
    query_serializer_class = RunDetailQuerySerializer

    @extend_schema(
        operation_id="runs_retrieve",
        summary="Get a run",
        description="Status and progress while it runs; metrics, step series, summary, verdict, manifest and "
        "artifacts once it is done; the error if it failed.\n\n"
        "Polling a running run: `?series_since=<step>` answers only the series points with a step above it, "
        "with `series_next_since` (the next poll's step), `series_attempt` (send it back as `series_attempt`: "
        "when the run was retried meanwhile, `series_reset` is true and `series` whole) and `series_counts` "
        "(every series' number of points: when yours differ after adding the new ones, fetch once without "
        "`series_since`). See docs/api.md.",
        parameters=[RunDetailQuerySerializer],
        responses={200: RunSeriesPollSerializer, **error_responses(404), **not_found(NO_RUN)},
    )
    def get(self, request, pk: int):
        query = parse_query(RunDetailQuerySerializer, request.query_params).validated_data
        context = {**self.get_serializer_context(), "series_query": query}
        return Response(RunSeriesPollSerializer(self.get_run(pk), context=context).data)


@extend_schema(exclude=True)
@method_decorator(never_cache, name="dispatch")
class RunLiveStatus(RunDetail):
    """/runs/<id>/status.json, which static/js/runs.js polls about once a second while a run works.

    The same representation as /api/runs/<id>/, without the API's throttles (a page with a few live
    runs polls more often than they allow) and never cached.
    """

    throttle_classes: list = []


class RunCancel(RunRendering):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="runs_cancel",
        summary="Cancel a run",
        description="The person who started it, the idea's author or staff. A queued run never starts; a running "
        "one stops at its next check (`cancel_requested` is true until it does). A finished run stays as it is.",
        request=None,
        responses={200: RunDetailSerializer, **error_responses(403, 404), **not_found(NO_RUN)},
    )
    def post(self, request, pk: int):
        return self.render_run(run_cancel(run=self.get_run(pk), user=request.user))


class RunArtifactDownload(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="runs_artifact_download",
        summary="Download a run's artifact",
        description="The file, with the artifact's content type, as an attachment: JSON for `json` and `plotly` "
        "artifacts, safetensors bytes for `tensors` and `checkpoint`.",
        parameters=[NAME_PARAMETER],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.ANY, description="A JSON artifact."),
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="Any other artifact's bytes."),
            **error_responses(404),
            **not_found("No such run or artifact, or its file is missing."),
        },
    )
    def get(self, request, pk: int, name: str):
        try:
            return artifact_download(run_id=pk, name=name)
        except ArtifactNotFound as error:
            raise NotFound(str(error)) from None
