"""The idea the page's address names, or the 404 page."""

from __future__ import annotations

from ideas.models import Idea
from ideas.selectors import idea_get
from pages.shortcuts import get_or_404


def idea_or_404(pk: int) -> Idea:
    return get_or_404(idea_get, "There is no idea with this number.", pk=pk)
