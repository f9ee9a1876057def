"""Every write to the catalogue goes through these services.

Pages, the API, the admin and the management commands call them, so there is
one way to vote, one way to change a status and one way to import.
"""

from ideas.services.catalogue import ImportSummary, catalogue_export, catalogue_import, catalogue_read
from ideas.services.ideas import (
    idea_create,
    idea_excerpt,
    idea_link_add,
    idea_set_status,
    idea_update,
    tags_from_names,
    user_can_edit_idea,
)
from ideas.services.votes import VoteResult, idea_unvote, idea_vote

__all__ = [
    "ImportSummary",
    "VoteResult",
    "catalogue_export",
    "catalogue_import",
    "catalogue_read",
    "idea_create",
    "idea_excerpt",
    "idea_link_add",
    "idea_set_status",
    "idea_unvote",
    "idea_update",
    "idea_vote",
    "tags_from_names",
    "user_can_edit_idea",
]
