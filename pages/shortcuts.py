"""What every page view shares, whichever app it belongs to: safe redirects, 404s, refusals.

`ideas` and `experiments` views both import from here, so neither reaches into the
other's views for these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

T = TypeVar("T")


def safe_next(request: HttpRequest, default: str | None = None) -> str | None:
    """The `next` parameter when it points back into this site, else `default` (no open redirects)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def get_or_404(read: Callable[..., T], message: str, **lookup: Any) -> T:
    """`read(**lookup)` (a selector that raises DoesNotExist), or a 404 page saying `message`."""
    try:
        return read(**lookup)
    except ObjectDoesNotExist:
        raise Http404(message) from None


def error_messages(error: ValidationError) -> list[str]:
    """A service's ValidationError as sentences: 'params.steps: Input should be ...'."""
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    return [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]


def refused(request: HttpRequest, message: str, *, status: int, back: str | None = None) -> HttpResponse:
    """A page that says why an action did not happen (400 bad input, 429 over the run quota)."""
    return render(request, "pages/refused.html", {"message": message, "back": back}, status=status)
