"""Deleting an idea: the same rule as editing it (its author or staff)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ideas.models import Idea
from ideas.services.ideas import user_can_edit_idea


@transaction.atomic
def idea_delete(*, idea: Idea, user) -> None:
    """Delete the idea with its votes, links and status history; only its author or staff may.

    An idea that has experiment runs is evidence others may rely on (and their checkpoints may feed
    other ideas' specs): it cannot be deleted, only archived.
    """
    if not user_can_edit_idea(user, idea):
        raise PermissionDenied("Only the idea's author or staff can delete it.")
    from experiments.models import ExperimentRun

    runs = ExperimentRun.objects.filter(spec__idea=idea).count()
    if runs:
        raise ValidationError(
            {"idea": f"This idea has {runs} experiment run(s); it cannot be deleted. Archive it instead."}
        )
    idea.delete()
