"""/api/ideas/{id}/vote/: vote (POST) and unvote (DELETE), both idempotent."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.schema import error_responses
from api.serializers.actions import VoteResultSerializer
from api.views.base import ApiView
from ideas.services import idea_unvote, idea_vote

VOTE_RESPONSES = {200: VoteResultSerializer, **error_responses(404)}


class IdeaVote(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="ideas_vote",
        summary="Vote for an idea",
        description="Voting twice counts once. Archived ideas take no votes (400 naming `idea`).",
        request=None,
        responses=VOTE_RESPONSES,
    )
    def post(self, request, pk: int):
        result = idea_vote(idea=self.get_idea(pk), user=request.user)
        return Response(VoteResultSerializer(result).data)

    @extend_schema(
        operation_id="ideas_unvote",
        summary="Withdraw a vote",
        description="Withdrawing a vote that is not there changes nothing.",
        request=None,
        responses=VOTE_RESPONSES,
    )
    def delete(self, request, pk: int):
        result = idea_unvote(idea=self.get_idea(pk), user=request.user)
        return Response(VoteResultSerializer(result).data)
