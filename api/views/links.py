"""/api/ideas/{id}/links/: link this idea to another (its author or staff)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.permissions import IsAuthorOrStaffToEdit
from api.schema import error_responses
from api.serializers.actions import LinkInputSerializer, LinkSerializer
from api.views.base import ApiView
from ideas.services.links import idea_link_add_by_user


class IdeaLinkCreate(ApiView):
    permission_classes = [IsAuthenticated, IsAuthorOrStaffToEdit]

    @extend_schema(
        operation_id="ideas_links_create",
        summary="Link an idea to another",
        description="This idea (the source) `expands`, `duplicates` or `relates_to` the target. "
        "Adding a link that exists returns it unchanged. An idea cannot link to itself.",
        request=LinkInputSerializer,
        responses={201: LinkSerializer, **error_responses(403, 404, 415)},
    )
    def post(self, request, pk: int):
        source = self.get_idea(pk)
        data = self.parse_body(LinkInputSerializer, request)
        link = idea_link_add_by_user(
            user=request.user, source=source, target=data["target"], link_type=data["link_type"]
        )
        return Response(
            LinkSerializer(link, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )
