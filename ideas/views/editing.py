"""Writing ideas: submit one, edit one (author or staff), change its status (staff, with a reason)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ideas.forms import IdeaForm, StatusForm, add_service_errors
from ideas.models import Idea, IdeaStatus
from ideas.selectors import idea_detail
from ideas.services import idea_create, idea_set_status, idea_update, user_can_edit_idea
from ideas.views.catalogue import render_idea_page
from ideas.views.common import idea_or_404


@login_required
def idea_create_page(request: HttpRequest) -> HttpResponse:
    """/ideas/new/: a signed-in researcher submits an idea."""
    form = IdeaForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            idea = idea_create(
                author=request.user,
                title=form.cleaned_data["title"],
                kind=form.cleaned_data["kind"],
                body=form.cleaned_data["body"],
                tags=form.tag_names(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Your idea is in the catalogue.")
            return redirect(idea)
    status = 400 if request.method == "POST" else 200
    return render(request, "ideas/idea_form.html", {"form": form, "idea": None}, status=status)


@login_required
def idea_edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    """/ideas/<pk>/edit/: the author or staff edit an idea; anyone else gets a 403."""
    idea = idea_or_404(pk)
    if not user_can_edit_idea(request.user, idea):
        raise PermissionDenied("Only the idea's author or staff can edit it.")
    if request.method != "POST":
        form = IdeaForm(initial=IdeaForm.initial_for(idea))
        return render(request, "ideas/idea_form.html", {"form": form, "idea": idea})
    form = IdeaForm(request.POST)
    if form.is_valid():
        try:
            idea_update(
                idea=idea,
                user=request.user,
                title=form.cleaned_data["title"],
                kind=form.cleaned_data["kind"],
                body=form.cleaned_data["body"],
                tags=form.tag_names(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect(idea)
    return render(request, "ideas/idea_form.html", {"form": form, "idea": idea}, status=400)


@login_required
@require_POST
def idea_status_change(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /ideas/<pk>/status/: staff move an idea to another status of its kind, saying why."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can change an idea's status.")
    try:
        idea = idea_detail(pk=pk, user=request.user)
    except Idea.DoesNotExist:
        raise Http404("There is no idea with this number.") from None
    form = StatusForm(request.POST, idea=idea)
    if form.is_valid():
        try:
            change = idea_set_status(
                idea=idea, status=form.cleaned_data["status"], user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if change is None:
                messages.info(request, "The idea already had that status; nothing changed.")
            else:
                messages.success(request, f"Status set to {IdeaStatus(change.to_status).label}.")
            return redirect(idea)
    return render_idea_page(request, idea, status_form=form, status=400)
