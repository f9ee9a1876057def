"""/api/ideas/{id}/status/ (staff change the status) and /api/ideas/{id}/status-history/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.permissions import IsStaff
from api.schema import error_responses
from api.serializers.actions import StatusInputSerializer, StatusResultSerializer
from api.serializers.ideas import StatusChangeSerializer
from api.views.base import ApiView
from ideas.models import Idea
from ideas.selectors import idea_status_history
from ideas.services import idea_set_status


class IdeaStatusChange(ApiView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="ideas_status_set",
        summary="Change an idea's status (staff)",
        description="The status must fit the idea's kind (a hypothesis is never `resolved`, an open-ended idea "
        "never `supported`). Records who, from, to and why; setting the current status records nothing.",
        request=StatusInputSerializer,
        responses={200: StatusResultSerializer, **error_responses(403, 404, 415)},
    )
    def post(self, request, pk: int):
        idea = self.get_idea(pk)
        data = self.parse_body(StatusInputSerializer, request)
        change = idea_set_status(idea=idea, status=data["status"], reason=data["reason"], user=request.user)
        return Response(StatusResultSerializer({"status": idea.status, "change": change}).data)


class IdeaStatusHistory(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="ideas_status_history",
        summary="An idea's status history",
        description="Every change, newest first.",
        responses={200: StatusChangeSerializer(many=True), **error_responses(404)},
    )
    def get(self, request, pk: int):
        try:
            changes = idea_status_history(pk=pk)
        except Idea.DoesNotExist:
            raise NotFound(f"No idea with id {pk}.") from None
        return Response(StatusChangeSerializer(changes, many=True).data)
