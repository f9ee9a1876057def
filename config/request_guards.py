"""Requests refused before any view sees them: NUL characters in the address, bodies over the size limit.

PostgreSQL cannot store or even compare text with a NUL character (psycopg raises,
which would be a 500), so a NUL anywhere in the path or the query string is answered
here, once for every page and endpoint: a 404 for the path (no route has one), a 400
naming the query parameter. A body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is a 413
(Django would raise RequestDataTooBig when a view first reads it). Multipart bodies
are left to the views: their files do not count towards that limit (dataset uploads
have their own, DATASET_MAX_BYTES), and the fields that do count still end in a 413
through `process_exception` here and the API's exception handler.

Under /api/ the answers are the API's JSON error body; elsewhere the site's plain
"That did not work" page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from pages.shortcuts import refused

NUL = "\x00"
API_PREFIX = "/api/"
NUL_MESSAGE = "Contains a NUL character (\\x00), which is not allowed."


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def printable_name(name: str) -> str:
    """A parameter's name as it can be shown in a message (NULs and other controls escaped)."""
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in name) or "(empty name)"


def body_too_big_message() -> str:
    return f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes this server accepts."


def _refused(request: HttpRequest, *, status: int, code: str, message: str, errors=None) -> HttpResponse:
    if is_api_request(request):
        body = {"detail": message, "code": code}
        if errors is not None:
            body["errors"] = errors
        return JsonResponse(body, status=status)
    return refused(request, message, status=status)


def _nul_parameter(request: HttpRequest) -> str | None:
    """The first query parameter whose name or value has a NUL, or None."""
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return name
    return None


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _body_too_big(request: HttpRequest) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None or request.content_type == "multipart/form-data":
        return False
    return _declared_length(request) > limit


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path or NUL in request.path_info:
            return _refused(
                request, status=404, code="not_found", message="No page or endpoint has a NUL character in its address."
            )
        name = _nul_parameter(request)
        if name is not None:
            shown = printable_name(name)
            return _refused(
                request,
                status=400,
                code="invalid",
                message=f"Invalid input: {shown}." if is_api_request(request) else f"Parameter {shown}: {NUL_MESSAGE}",
                errors={shown: [NUL_MESSAGE]},
            )
        if _body_too_big(request):
            return _refused(request, status=413, code="request_too_large", message=body_too_big_message())
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A multipart body whose fields (not files) are over the limit, found while a page view reads it."""
        if isinstance(exception, RequestDataTooBig):
            return _refused(request, status=413, code="request_too_large", message=body_too_big_message())
        return None
