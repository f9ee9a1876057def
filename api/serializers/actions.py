"""Votes, status changes and links: what goes in and what comes back."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.fields import StrictPrimaryKeyRelatedField, TextField
from api.serializers.ideas import IdeaRefSerializer, StatusChangeSerializer
from ideas.models import Idea, IdeaLink, IdeaStatus, LinkType

REASON_MAX = 2000


class VoteResultSerializer(serializers.Serializer):
    score = serializers.IntegerField(help_text="Imported votes plus live votes, after this call.")
    voted = serializers.BooleanField(help_text="Whether the caller's vote is now counted.")


class StatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=IdeaStatus.choices, help_text="Must fit the idea's kind.")
    reason = TextField(required=False, allow_blank=True, max_length=REASON_MAX, default="")


class StatusResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=IdeaStatus.choices, help_text="The idea's status now.")
    change = StatusChangeSerializer(allow_null=True, help_text="The change recorded; null if it already had it.")


class LinkInputSerializer(serializers.Serializer):
    target = StrictPrimaryKeyRelatedField(queryset=Idea.objects.all(), help_text="The id of the linked idea.")
    link_type = serializers.ChoiceField(choices=LinkType.choices, default=LinkType.RELATES_TO)


class LinkSerializer(serializers.ModelSerializer):
    """source <link_type> target."""

    source = IdeaRefSerializer(read_only=True)
    target = IdeaRefSerializer(read_only=True)

    class Meta:
        model = IdeaLink
        fields = ["id", "source", "link_type", "target", "created_at"]
