"""An idea's addresses (`url` in the API, `page_url` for people), reversed once per request.

`reverse()` walks the URL resolver on every call, and a list of 100 ideas asked it 200 times. Both
addresses have a fixed shape, so each is reversed once with placeholder values, split around them,
and filled in for every idea.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

PK_PLACEHOLDER = "918273645"
SLUG_PLACEHOLDER = "slug-placeholder"
CONTEXT_KEY = "idea_addresses"


@dataclass(frozen=True)
class IdeaAddresses:
    api: tuple[str, str]  # the API address before and after the pk
    page: tuple[str, str, str] | None  # the page's: before the pk, between pk and slug, after; None: no pages

    @classmethod
    def build(cls, request) -> IdeaAddresses:
        """The addresses as `request` (absolute) or as paths (no request) would reverse them."""

        def absolute(path: str) -> str:
            return request.build_absolute_uri(path) if request is not None else path

        api_path = reverse("api:idea-detail", kwargs={"pk": PK_PLACEHOLDER})
        api_before, _, api_after = api_path.partition(PK_PLACEHOLDER)
        try:
            page_path = reverse("idea-detail", kwargs={"pk": PK_PLACEHOLDER, "slug": SLUG_PLACEHOLDER})
        except NoReverseMatch:  # the pages are not mounted (an API-only deployment)
            return cls(api=(absolute(api_before), api_after), page=None)
        page_before, _, rest = page_path.partition(PK_PLACEHOLDER)
        between, _, page_after = rest.partition(SLUG_PLACEHOLDER)
        return cls(api=(absolute(api_before), api_after), page=(absolute(page_before), between, page_after))

    @classmethod
    def for_context(cls, context: dict) -> IdeaAddresses:
        """Built once per serializer context (one request), shared by nested serializers."""
        if CONTEXT_KEY not in context:
            context[CONTEXT_KEY] = cls.build(context.get("request"))
        return context[CONTEXT_KEY]

    def api_url(self, pk: int) -> str:
        before, after = self.api
        return f"{before}{pk}{after}"

    def page_url(self, pk: int, slug: str) -> str | None:
        if self.page is None:
            return None
        before, between, after = self.page
        return f"{before}{pk}{between}{slug}{after}"
