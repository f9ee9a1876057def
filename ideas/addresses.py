"""Selectors that resolve an idea's addresses for the pages.

An idea is reached by its primary key (the canonical URL adds the slug) or by
the imported catalogue's number, so "idea #131" keeps pointing where it did.
These reads are small on purpose: redirects and actions need only the row,
not the prefetches of `ideas.selectors.idea_detail`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ideas.models import Idea
from ideas.rendering import IDEA_REFERENCE


def idea_get(*, pk: int) -> Idea:
    """The idea with this primary key; raises Idea.DoesNotExist."""
    return Idea.objects.get(pk=pk)


def idea_get_by_legacy_number(*, number: int) -> Idea:
    """The idea with this catalogue number; raises Idea.DoesNotExist."""
    return Idea.objects.only("pk", "slug").get(legacy_number=number)


def idea_urls_by_legacy_number(numbers: Iterable[int]) -> dict[int, str]:
    """Canonical URLs of the ideas with these catalogue numbers (missing numbers are left out)."""
    numbers = set(numbers)
    if not numbers:
        return {}
    rows = Idea.objects.filter(legacy_number__in=numbers).only("pk", "slug", "legacy_number")
    return {idea.legacy_number: idea.get_absolute_url() for idea in rows}


def idea_reference_urls(idea: Idea) -> dict[int, str]:
    """URLs for every "idea #N" its body mentions: linked ideas first (already prefetched), then one query.

    `idea` should come from `idea_detail`, whose prefetched links cost nothing here.
    """
    urls: dict[int, str] = {}
    for link in idea.links_out.all():
        if link.target.legacy_number is not None:
            urls[link.target.legacy_number] = link.target.get_absolute_url()
    for link in idea.links_in.all():
        if link.source.legacy_number is not None:
            urls[link.source.legacy_number] = link.source.get_absolute_url()
    mentioned = {int(number) for number in IDEA_REFERENCE.findall(idea.body or "")}
    urls.update(idea_urls_by_legacy_number(mentioned - urls.keys()))
    return urls
