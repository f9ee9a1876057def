"""/api/ideas/ and /api/ideas/{id}/: list (filtered, searched, paged), create, read, edit, delete."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from api.filters import IdeaListQuerySerializer, parse_query
from api.pagination import IdeaPagination
from api.permissions import IsAuthorOrStaffToEdit
from api.schema import error_responses
from api.serializers.idea_input import IdeaCreateSerializer, IdeaUpdateSerializer
from api.serializers.idea_rows import summary_rows
from api.serializers.ideas import IdeaDetailSerializer, IdeaPageSerializer
from api.views.base import ApiView
from ideas.models import Idea
from ideas.selectors import idea_detail, idea_list_rows, idea_rows_complete
from ideas.services import idea_create, idea_update
from ideas.services.deletion import idea_delete


class IdeaDetailRendering(ApiView):
    def render_detail(self, pk: int, *, status_code: int = status.HTTP_200_OK) -> Response:
        """The idea as `idea_detail` reads it, serialized for the caller."""
        try:
            idea = idea_detail(pk=pk, user=self.request.user)
        except Idea.DoesNotExist:
            raise NotFound(f"No idea with id {pk}.") from None
        return Response(IdeaDetailSerializer(idea, context=self.get_serializer_context()).data, status=status_code)


class IdeaListCreate(IdeaDetailRendering):
    query_serializer_class = IdeaListQuerySerializer

    @extend_schema(
        operation_id="ideas_list",
        summary="List ideas",
        description="The list page's search, filters and orderings, a page at a time. "
        "Unknown parameters and values are a 400 naming them.",
        parameters=[IdeaListQuerySerializer],
        responses={200: IdeaPageSerializer, **error_responses(404)},
    )
    def get(self, request):
        filters = parse_query(IdeaListQuerySerializer, request.query_params).to_filters()
        paginator = IdeaPagination()
        page = paginator.paginate_queryset(idea_list_rows(filters=filters, user=request.user), request, view=self)
        rows = idea_rows_complete(page)
        return paginator.get_paginated_response(summary_rows(rows, self.get_serializer_context()))

    @extend_schema(
        operation_id="ideas_create",
        summary="Create an idea",
        description="Needs a login; the caller becomes the author. The idea starts `open`.",
        request=IdeaCreateSerializer,
        responses={201: IdeaDetailSerializer, **error_responses(403, 415)},
    )
    def post(self, request):
        data = self.parse_body(IdeaCreateSerializer, request)
        idea = idea_create(author=request.user, **data)
        return self.render_detail(idea.pk, status_code=status.HTTP_201_CREATED)


class IdeaDetail(IdeaDetailRendering):
    permission_classes = [IsAuthenticatedOrReadOnly, IsAuthorOrStaffToEdit]

    @extend_schema(
        operation_id="ideas_retrieve",
        summary="Get an idea",
        description="With its body (markdown and sanitized HTML), links both ways and status history.",
        responses={200: IdeaDetailSerializer, **error_responses(404)},
    )
    def get(self, request, pk: int):
        return self.render_detail(pk)

    @extend_schema(
        operation_id="ideas_partial_update",
        summary="Edit an idea",
        description="Its author or staff. Fields left out stay as they are; a new kind must fit the status.",
        request=IdeaUpdateSerializer,
        responses={200: IdeaDetailSerializer, **error_responses(403, 404, 415)},
    )
    def patch(self, request, pk: int):
        idea = self.get_idea(pk)
        data = self.parse_body(IdeaUpdateSerializer, request)
        idea_update(idea=idea, user=request.user, **data)
        return self.render_detail(pk)

    @extend_schema(
        operation_id="ideas_destroy",
        summary="Delete an idea",
        description="Its author or staff. Its votes, links and status history go with it.",
        responses={204: None, **error_responses(403, 404)},
    )
    def delete(self, request, pk: int):
        idea_delete(idea=self.get_idea(pk), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
