"""Voting from a page: a plain form POST that works without JavaScript.

static/js/vote.js upgrades the form to the API's vote endpoint (/api/ideas/<id>/vote/), so
a vote has one JSON shape; this view only ever answers with pages.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from ideas.services import idea_unvote, idea_vote
from ideas.views.common import idea_or_404
from pages.shortcuts import refused, safe_next

VOTE_ACTIONS = {"vote": idea_vote, "unvote": idea_unvote}


@require_POST
def idea_vote_action(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /ideas/<pk>/vote/ with action=vote|unvote and next=<page to return to>.

    Anonymous callers are sent to log in. A refused vote (an archived idea) is a 400 page
    carrying the service's message.
    """
    back = safe_next(request, default=reverse("idea-permalink", kwargs={"pk": pk}))
    if not request.user.is_authenticated:
        return redirect_to_login(back)

    action = request.POST.get("action", "vote")
    if action not in VOTE_ACTIONS:
        return refused(request, f"Unknown action {action!r}; use vote or unvote.", status=400)
    idea = idea_or_404(pk)
    try:
        VOTE_ACTIONS[action](idea=idea, user=request.user)
    except ValidationError as error:
        return refused(request, " ".join(error.messages), status=400, back=back)
    return redirect(back)
