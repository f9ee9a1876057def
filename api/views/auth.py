"""/api/auth/token/: username and password in, an API token out."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.schema import error_responses
from api.serializers.auth import TokenSerializer
from api.serializers.fields import TextField
from api.services import token_issue
from api.views.base import ApiView


class TokenCredentialsSerializer(AuthTokenSerializer):
    username = TextField(write_only=True, max_length=150)
    password = TextField(write_only=True, max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenCreate(ApiView):
    authentication_classes = []  # a stale token must not stand in the way of getting a new one
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token_create",
        summary="Get an API token",
        description='Send it as "Authorization: Token <token>". The same user always gets the same token. '
        "Wrong credentials are a 400.",
        request=TokenCredentialsSerializer,
        responses={200: TokenSerializer, **error_responses(415)},
        auth=[],
    )
    def post(self, request):
        user = self.parse_body(TokenCredentialsSerializer, request)["user"]
        return Response({"token": token_issue(user=user)})
