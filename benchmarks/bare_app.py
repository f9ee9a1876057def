"""The floor the idea list is measured against (benchmarks/api.py): a plain Django view answering what the list
API's default request answers, the count and a page of ideas in the same order, straight from `.values()`.

It has the list's own columns (author by username) but none of the work a richer row needs (tags and collections,
experiment counts, the caller's vote, URLs), so list API / bare view says how close the list comes to the least
a Django view must do for the same rows. Served with the project's settings and middleware, only the URLconf
swapped (benchmarks/bare_settings.py), so the ratio measures the list's own code, not the stack around it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from ideas.models import Idea
from ideas.selectors import ORDERINGS

FIELDS = (
    "id",
    "legacy_number",
    "slug",
    "title",
    "kind",
    "status",
    "score",
    "author__username",
    "created_at",
    "updated_at",
)
DEFAULT_ORDERING = ORDERINGS["-score"]  # the list's order when no ordering or search is asked for


def _positive(request: HttpRequest, name: str, default: int, ceiling: int) -> int | None:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return None
    return value if 1 <= value <= ceiling else None


def idea_page(request: HttpRequest) -> JsonResponse:
    """`?page=` and `?page_size=` as the API takes them; {count, results}."""
    size = _positive(request, "page_size", settings.API_PAGE_SIZE, settings.API_MAX_PAGE_SIZE)
    page = _positive(request, "page", 1, 1_000_000)
    if size is None or page is None:
        return JsonResponse({"detail": "page and page_size must be positive integers in range."}, status=400)
    ideas = Idea.objects.order_by(*DEFAULT_ORDERING)
    rows = list(ideas.values(*FIELDS)[(page - 1) * size : page * size])
    return JsonResponse({"count": ideas.count(), "results": rows})


urlpatterns = [path("bare/ideas/", idea_page, name="bare-idea-list")]
