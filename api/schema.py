"""OpenAPI helpers: the error responses every operation documents."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from api.serializers.errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Bad input: `errors` names each offending field or query parameter.",
    401: "Not signed in (or a bad token), and this needs a login.",
    403: "Signed in, but not allowed: `detail` says why.",
    404: "No such idea (or page).",
    409: "It conflicts with the current state: `detail` says why.",
    415: "The body is not JSON (send Content-Type: application/json).",
    429: "Too many requests: wait the seconds in Retry-After.",
}


def error_responses(*codes: int) -> dict[tuple[int, str], OpenApiResponse]:
    """400, 401 and 429 (any call may carry a bad parameter or token, or be throttled) plus `codes`.

    Errors are always JSON, also where the success is CSV.
    """
    return {
        (code, "application/json"): OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in sorted({400, 401, 429, *codes})
    }


def not_found(description: str) -> dict[tuple[int, str], OpenApiResponse]:
    """A 404 that says what was not found (the default description speaks of ideas)."""
    return {(404, "application/json"): OpenApiResponse(ErrorSerializer, description=description)}
