"""Voting from a page: a plain form POST that works without JavaScript, and JSON for static/js/vote.js."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ideas.services import idea_unvote, idea_vote
from ideas.views.common import idea_or_404, safe_next, wants_json

VOTE_ACTIONS = {"vote": idea_vote, "unvote": idea_unvote}


@require_POST
def idea_vote_action(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /ideas/<pk>/vote/ with action=vote|unvote and next=<page to return to>.

    Anonymous callers are sent to log in (a 401 with `login_url` for JSON callers). A refused
    vote (an archived idea) is a 400 carrying the service's message.
    """
    as_json = wants_json(request)
    back = safe_next(request, default=reverse("idea-permalink", kwargs={"pk": pk}))
    if not request.user.is_authenticated:
        login_url = redirect_to_login(back).url
        if as_json:
            return JsonResponse({"detail": "Log in to vote.", "login_url": login_url}, status=401)
        return redirect(login_url)

    action = request.POST.get("action", "vote")
    if action not in VOTE_ACTIONS:
        return _refused(request, as_json, f"Unknown action {action!r}; use vote or unvote.")
    idea = idea_or_404(pk)
    try:
        result = VOTE_ACTIONS[action](idea=idea, user=request.user)
    except ValidationError as error:
        return _refused(request, as_json, " ".join(error.messages), back=back)
    if as_json:
        return JsonResponse({"score": result.score, "voted": result.voted})
    return redirect(back)


def _refused(request: HttpRequest, as_json: bool, message: str, back: str | None = None) -> HttpResponse:
    if as_json:
        return JsonResponse({"detail": message}, status=400)
    return render(request, "ideas/refused.html", {"message": message, "back": back}, status=400)
