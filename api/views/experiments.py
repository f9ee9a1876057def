"""/api/experiment-kinds/ and /api/experiments/: the kinds, specs attached to ideas, and triggering runs."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from api.filters import SpecListQuerySerializer, parse_query
from api.pagination import ExperimentPagination
from api.schema import error_responses, not_found
from api.serializers.errors import ErrorSerializer
from api.serializers.experiments import (
    KindSerializer,
    RunTriggerInputSerializer,
    RunTriggerResultSerializer,
    SpecCreateSerializer,
    SpecPageSerializer,
    SpecSerializer,
    run_api_url,
)
from api.throttles import AnonReadThrottle, TriggerThrottle, WriteThrottle
from api.views.base import ApiView
from experiments.models import ExperimentSpec
from experiments.selectors import kind_catalog, spec_detail, spec_get, spec_list
from experiments.services import run_trigger, spec_create

NO_SPEC = "No experiment spec with this id."
KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The kind's key.")


class KindList(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="experiment_kinds_list",
        summary="List experiment kinds",
        description="Every registered kind, by key: what it computes, the JSON Schema of its params, the metrics "
        "it produces (with their meanings), where it runs and its time limits.",
        responses={200: KindSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        return Response(KindSerializer(kind_catalog(), many=True).data)


class KindDetail(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="experiment_kinds_retrieve",
        summary="Get an experiment kind",
        parameters=[KEY_PARAMETER],
        responses={200: KindSerializer, **error_responses(404), **not_found("No kind with this key.")},
    )
    def get(self, request, key: str):
        for kind in kind_catalog():
            if kind.key == key:
                return Response(KindSerializer(kind).data)
        raise NotFound(f"No experiment kind {key!r}; see /api/experiment-kinds/.")


class SpecRendering(ApiView):
    def render_spec(self, pk: int, *, status_code: int = status.HTTP_200_OK) -> Response:
        """The spec as `spec_detail` reads it (with its newest runs), serialized for the caller."""
        try:
            spec = spec_detail(pk=pk)
        except ExperimentSpec.DoesNotExist:
            raise NotFound(f"No experiment with id {pk}.") from None
        return Response(SpecSerializer(spec, context=self.get_serializer_context()).data, status=status_code)


class SpecListCreate(SpecRendering):
    query_serializer_class = SpecListQuerySerializer

    @extend_schema(
        operation_id="experiments_list",
        summary="List experiment specs",
        description="Oldest first, each with its newest runs; `idea` keeps one idea's. "
        "Unknown parameters, and an idea that does not exist, are a 400 naming them.",
        parameters=[SpecListQuerySerializer],
        responses={200: SpecPageSerializer, **error_responses(404), **not_found("A page past the end.")},
    )
    def get(self, request):
        query = parse_query(SpecListQuerySerializer, request.query_params).validated_data
        specs = spec_list(idea_id=query.get("idea"))
        paginator = ExperimentPagination()
        page = paginator.paginate_queryset(specs, request, view=self)
        data = SpecSerializer(page, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="experiments_create",
        summary="Attach an experiment spec to an idea",
        description="Needs a login; the caller becomes its author. The params are checked against the kind "
        "(a 400 names each bad one, as `params.<field>`) and stored with every default filled in. "
        "A `criterion` moves the idea's status, so only the idea's author or staff may pre-register one (403).",
        request=SpecCreateSerializer,
        responses={201: SpecSerializer, **error_responses(403, 415)},
    )
    def post(self, request):
        data = self.parse_body(SpecCreateSerializer, request)
        spec = spec_create(user=request.user, **data)
        return self.render_spec(spec.pk, status_code=status.HTTP_201_CREATED)


class SpecDetail(SpecRendering):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="experiments_retrieve",
        summary="Get an experiment spec",
        description="With its params, criterion and newest runs.",
        responses={200: SpecSerializer, **error_responses(404), **not_found(NO_SPEC)},
    )
    def get(self, request, pk: int):
        return self.render_spec(pk)


TRIGGER_429 = OpenApiResponse(
    ErrorSerializer,
    description='Throttled (`code` "throttled"), or you already have as many queued runs as one person may '
    '(`code` "run_quota_exceeded"): wait the seconds in Retry-After.',
)


class SpecRunTrigger(ApiView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AnonReadThrottle, WriteThrottle, TriggerThrottle]

    @extend_schema(
        operation_id="experiments_run",
        summary="Run an experiment spec",
        description="Queues a run (202), unless an identical run (same kind version, params and seed) already "
        "succeeded: then that run answers with `cached: true` (200). An identical run that is queued or running "
        "answers with `created: false` (202), so a double click never makes two. `force: true` queues a "
        "replication anyway. Poll the run at `Location` (or /api/runs/{id}/) until it finishes.",
        request=RunTriggerInputSerializer,
        responses={
            202: OpenApiResponse(RunTriggerResultSerializer, description="Queued, or already queued or running."),
            200: OpenApiResponse(RunTriggerResultSerializer, description="Cached: an identical run succeeded."),
            **error_responses(404, 415),
            **not_found(NO_SPEC),
            (429, "application/json"): TRIGGER_429,
        },
    )
    def post(self, request, pk: int):
        try:
            spec = spec_get(pk=pk)
        except ExperimentSpec.DoesNotExist:
            raise NotFound(f"No experiment with id {pk}.") from None
        data = self.parse_body(RunTriggerInputSerializer, request)
        result = run_trigger(spec=spec, user=request.user, force=data["force"])
        location = run_api_url(result.run.pk, request)
        return Response(
            RunTriggerResultSerializer(result, context=self.get_serializer_context()).data,
            status=status.HTTP_200_OK if result.cached else status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )
