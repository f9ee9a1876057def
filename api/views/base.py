"""What every API view shares: no unknown query parameters, body parsing, finding the idea."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from api.filters import check_query_params, parameter_names
from ideas.models import Idea
from ideas.selectors import idea_get


class ApiView(APIView):
    """An APIView that refuses query parameters it does not take.

    `query_serializer_class` (for GET) names the parameters a view takes; views
    without one take none.
    """

    query_serializer_class: type[serializers.Serializer] | None = None

    def allowed_query_params(self, request) -> frozenset[str] | set[str]:
        if self.query_serializer_class is not None and request.method in ("GET", "HEAD"):
            return parameter_names(self.query_serializer_class)
        return set()

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # negotiation, authentication, permissions, throttles
        if hasattr(self, request.method.lower()):  # an unsupported method is a 405 whatever the query
            check_query_params(request.query_params, self.allowed_query_params(request))

    def parse_body(self, serializer_class: type[serializers.Serializer], request) -> dict[str, Any]:
        """The validated body; a 400 naming each bad field."""
        serializer = serializer_class(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def get_serializer_context(self) -> dict[str, Any]:
        return {"request": self.request, "view": self}

    def get_idea(self, pk: int) -> Idea:
        """The idea, after checking the caller may do this request's method to it (404, then 403)."""
        try:
            idea = idea_get(pk=pk)
        except Idea.DoesNotExist:
            raise NotFound(f"No idea with id {pk}.") from None
        self.check_object_permissions(self.request, idea)
        return idea
