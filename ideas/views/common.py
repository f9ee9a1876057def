"""Small helpers the page views share."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from ideas.addresses import idea_get
from ideas.models import Idea


def safe_next(request: HttpRequest, default: str | None = None) -> str | None:
    """The `next` parameter when it points back into this site, else `default` (no open redirects)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def wants_json(request: HttpRequest) -> bool:
    """Whether the caller (vote.js) asked for JSON rather than a page."""
    return "application/json" in request.headers.get("Accept", "")


def idea_or_404(pk: int) -> Idea:
    try:
        return idea_get(pk=pk)
    except Idea.DoesNotExist:
        raise Http404("There is no idea with this number.") from None
