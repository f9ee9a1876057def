"""Links between ideas added by a person: who may add them."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from ideas.models import Idea, IdeaLink, LinkType
from ideas.services.ideas import idea_link_add, user_can_edit_idea


def idea_link_add_by_user(*, user, source: Idea, target: Idea, link_type: str = LinkType.RELATES_TO) -> IdeaLink:
    """Link `source` to `target` (idempotent); only the source idea's author or staff may.

    `idea_link_add` stays the unchecked form for the importer, which links on the system's behalf.
    """
    if not user_can_edit_idea(user, source):
        raise PermissionDenied("Only the source idea's author or staff can link it to other ideas.")
    return idea_link_add(source=source, target=target, link_type=link_type)
