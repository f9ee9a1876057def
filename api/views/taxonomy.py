"""/api/tags/ and /api/collections/: the vocabularies to filter by, with how many ideas each has."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.schema import error_responses
from api.serializers.taxonomy import CollectionSerializer, TagSerializer
from api.views.base import ApiView
from ideas.selectors import collection_list, tag_list


class TagList(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="tags_list",
        summary="List tags",
        description="Every tag, by name; filter ideas with `?tag=<slug>`.",
        responses={200: TagSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        return Response(TagSerializer(tag_list(), many=True).data)


class CollectionList(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="collections_list",
        summary="List collections",
        description="Every collection, by name; filter ideas with `?collection=<slug>`.",
        responses={200: CollectionSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        return Response(CollectionSerializer(collection_list(), many=True).data)
