"""The token endpoint's answer (its input is DRF's AuthTokenSerializer: username and password)."""

from __future__ import annotations

from rest_framework import serializers


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='Send it as "Authorization: Token <token>".')
