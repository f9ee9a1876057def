"""When the database (or the artifact storage) is down: requests answer 503 with Retry-After, not 500.

`DATABASE_UNAVAILABLE` are the errors of a database that cannot be reached or
dropped the connection (a restart, a network cut); other database errors are
bugs and stay 500s. The API's exception handler answers them in the API's JSON
error format; `DatabaseUnavailableMiddleware` does the same for pages with a
plain 503 page. Either logs one warning line, not an unhandled-error traceback.
An artifact storage that cannot be reached (ArtifactStorageUnavailable: the S3
bucket of ARTIFACT_STORAGE=s3) is answered the same way; the warning names the bucket and the
error, the answer does not (it may go to anyone).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30
MESSAGE = "The database is unavailable for a moment. Please try again shortly."
# What users read when the artifact storage fails: its bucket, endpoint and the client's error go to the log only.
STORAGE_MESSAGE = "The artifact storage is unavailable for a moment. Please try again shortly."


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    what = "database" if isinstance(exc, DATABASE_UNAVAILABLE) else "artifact storage"
    log.warning("%s %s: %s unavailable (%s)", request.method, request.path, what, exc)


def mark_unavailable(response: HttpResponse) -> HttpResponse:
    """Retry-After, and no second log line from Django's handler (the warning above said it)."""
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # Django's log_response skips a response that says so
    return response


class DatabaseUnavailableMiddleware:
    """A page whose view hit an unreachable database is a plain 503 page."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from experiments.errors import ArtifactStorageUnavailable

        if isinstance(exception, ArtifactStorageUnavailable):
            message = STORAGE_MESSAGE
        elif isinstance(exception, DATABASE_UNAVAILABLE):
            message = MESSAGE
        else:
            return None
        log_unavailable(request, exception)
        # No template context processors: they may need the database too (the signed-in user).
        body = render_to_string("503.html", {"message": message})
        return mark_unavailable(HttpResponse(body, status=503))
