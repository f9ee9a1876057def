"""Deleting an idea: the same rule as editing it (its author or staff)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from ideas.models import Idea
from ideas.services.ideas import user_can_edit_idea


@transaction.atomic
def idea_delete(*, idea: Idea, user) -> None:
    """Delete the idea with its votes, links and status history; only its author or staff may.

    An idea that has experiment runs is evidence others may rely on (and their checkpoints may feed
    other ideas' specs): the database protects runs from deletion, so it can only be archived.
    """
    if not user_can_edit_idea(user, idea):
        raise PermissionDenied("Only the idea's author or staff can delete it.")
    try:
        idea.delete()
    except ProtectedError as error:  # its specs' runs (ExperimentRun.spec is PROTECT)
        runs = len(error.protected_objects)
        raise ValidationError(
            {"idea": f"This idea has {runs} experiment run(s); it cannot be deleted. Archive it instead."}
        ) from None
