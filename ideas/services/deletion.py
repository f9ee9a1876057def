"""Deleting an idea: the same rule as editing it (its author or staff)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from ideas.models import Idea
from ideas.services.ideas import user_can_edit_idea


@transaction.atomic
def idea_delete(*, idea: Idea, user) -> None:
    """Delete the idea with its votes, links and status history; only its author or staff may."""
    if not user_can_edit_idea(user, idea):
        raise PermissionDenied("Only the idea's author or staff can delete it.")
    idea.delete()
