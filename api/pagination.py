"""Pages of ideas: {count, next, previous, results}, `page` and `page_size` (at most API_MAX_PAGE_SIZE).

The query serializer has already refused a page_size over the maximum (a 400,
not a silent clamp); a page past the end is a 404.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class IdeaPagination(PageNumberPagination):
    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
    invalid_page_message = "Page {page_number} does not exist: {message}."


class ExperimentPagination(IdeaPagination):
    """Pages of experiment specs and runs: the same parameters and limits as the idea list."""
