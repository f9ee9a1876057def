"""Any other path under /api/: a JSON 404 (not the site's HTML page), with a hint for a missing slash."""

from __future__ import annotations

from django.urls import Resolver404, resolve
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from api.views.base import ApiView

NOT_FOUND_NAME = "not-found"


def _hint(path: str) -> str:
    if not path.endswith("/"):
        try:
            match = resolve(path + "/")
        except Resolver404:
            match = None
        if match is not None and match.url_name != NOT_FOUND_NAME:
            return f" Did you mean {path}/ (with the slash)?"
    return ""


@extend_schema(exclude=True)
class ApiNotFound(ApiView):
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        # Negotiation, authentication and throttles as usual, but no query-parameter check: the path is the problem.
        APIView.initial(self, request, *args, **kwargs)
        raise NotFound(f"No API endpoint at {request.path}.{_hint(request.path)} See /api/docs/.")
