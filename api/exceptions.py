"""One JSON error body for every failure under /api/.

    {"detail": "Invalid input: kind.", "code": "invalid", "errors": {"kind": ["Unknown kind 'x'; ..."]}}

`errors` appears only on 400s and maps each offending field (dotted for nested
items: "tags.0") to its messages. Services raise Django's ValidationError and
PermissionDenied; they become 400 and 403 here, keeping the service's words. A
full run queue (RunQuotaExceeded, a PermissionDenied) is a 429 instead, and deleting a dataset that
queued or running runs still read (DatasetInUse, a ValidationError) a 409, and a body over
DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig) a 413.
A database that cannot be reached is a 503 with Retry-After (code
"database_unavailable"), logged as one warning; so is an artifact storage (the S3
bucket) that cannot be reached (code "artifact_storage_unavailable", the message
naming the storage and the file). An unexpected exception is
logged and answered with a JSON 500 rather than an HTML page (in DEBUG it
propagates, so the developer sees the traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core import exceptions as django_exceptions
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.availability import DATABASE_UNAVAILABLE, MESSAGE, RETRY_AFTER_SECONDS, STORAGE_MESSAGE, log_unavailable
from config.request_guards import body_too_big_message
from experiments.errors import ArtifactStorageUnavailable, DatasetInUse, RunQuotaExceeded

logger = logging.getLogger("api")

NON_FIELD = "non_field_errors"

# Seconds to suggest in Retry-After when a run queue is full: a polling interval, not a promise
# (the cap frees as soon as one of the caller's queued runs starts).
RUN_QUOTA_RETRY_AFTER = 60


class RunQueueFull(exceptions.APIException):
    """429: the caller has as many queued runs as one person may."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "You have as many queued runs as one person may; wait for some to start."
    default_code = "run_quota_exceeded"
    wait = RUN_QUOTA_RETRY_AFTER  # DRF's handler turns `wait` into Retry-After


class PayloadTooLarge(exceptions.APIException):
    """413: the body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (Django's RequestDataTooBig)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class Conflict(exceptions.APIException):
    """409: the request is fine, but the thing it names is busy (a dataset that runs still read)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with the current state of the resource."
    default_code = "conflict"


class DatabaseUnavailable(exceptions.APIException):
    """503: the database cannot be reached; the request may be repeated after Retry-After."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = MESSAGE
    default_code = "database_unavailable"
    wait = RETRY_AFTER_SECONDS


class StorageUnavailable(exceptions.APIException):
    """503: the artifact storage (ARTIFACT_STORAGE=s3: the bucket) cannot be reached; nothing was changed."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = STORAGE_MESSAGE
    default_code = "artifact_storage_unavailable"
    wait = RETRY_AFTER_SECONDS


def _as_api_exception(exc: Exception) -> Exception:
    """Django and ORM exceptions as the DRF exceptions that carry their message."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return DatabaseUnavailable()
    if isinstance(exc, ArtifactStorageUnavailable):
        return StorageUnavailable()  # the bucket and the client's error are logged, not shown
    if isinstance(exc, django_exceptions.RequestDataTooBig):
        return PayloadTooLarge(body_too_big_message())
    if isinstance(exc, DatasetInUse):
        return Conflict(" ".join(exc.messages) or None)
    if isinstance(exc, django_exceptions.ValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({NON_FIELD: exc.messages})
    if isinstance(exc, RunQuotaExceeded):
        return RunQueueFull(str(exc) or None)
    if isinstance(exc, django_exceptions.PermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, django_exceptions.ObjectDoesNotExist | Http404):
        return exceptions.NotFound(str(exc) or None)
    return exc


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"tags": {0: ["..."]}} -> {"tags.0": ["..."]}; a bare list is a non-field error."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            if value:
                flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or NON_FIELD: messages}


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    """The JSON body for `exc` (see the module docstring)."""
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        named = [field for field in errors if field != NON_FIELD]
        detail = (
            f"Invalid input: {', '.join(named)}." if named else "; ".join(errors.get(NON_FIELD, ["Invalid input."]))
        )
        return {"detail": detail, "code": "invalid", "errors": errors}
    detail = exc.detail
    code = getattr(detail, "code", None) or exc.default_code
    return {"detail": str(detail), "code": str(code)}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error as `error_body`, with DRF's headers (Retry-After...)."""
    if isinstance(exc, (*DATABASE_UNAVAILABLE, ArtifactStorageUnavailable)) and (request := context.get("request")):
        log_unavailable(request, exc)
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        if settings.DEBUG:
            return None  # DRF re-raises: the developer gets the traceback
        request = context.get("request")
        logger.error(
            "Unhandled exception in %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"), exc_info=exc
        )
        return Response(
            {"detail": "Server error. It has been logged.", "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = error_body(exc)
    if isinstance(exc, DatabaseUnavailable | StorageUnavailable):
        response._has_been_logged = True  # the warning above said it; no "Service Unavailable" error line
    return response
