"""Adding an experiment to an idea: pick a kind, fill in the form its params schema builds."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from experiments.engine.params_schema import params_schema_of
from experiments.forms import SpecForm
from experiments.services import spec_create
from experiments.views.presenters import doc_paragraphs, kinds_by_key
from ideas.models import IdeaKind
from ideas.selectors import idea_get
from ideas.services import user_can_edit_idea
from pages.shortcuts import get_or_404

# The kind the form opens with: a CPU kind that runs in seconds on its defaults (a random 2-layer model's
# head scores, a baseline) and means something once pointed at a trained run's checkpoint.
FIRST_KIND = "head_detection"


@login_required
def spec_create_page(request: HttpRequest, pk: int) -> HttpResponse:
    """/ideas/<pk>/experiments/new/?kind=<key>: a signed-in researcher attaches a runnable spec to an idea.

    The kind comes from the query (GET) or the form's hidden field (POST); without one, FIRST_KIND
    (or the first kind, should that one be gone). Field errors from `spec_create` are shown next to
    their fields with a 400 (a param's by its dotted path); a criterion from someone who may not
    pre-register one is the 403 page.
    """
    idea = get_or_404(idea_get, "There is no idea with this number.", pk=pk)
    kinds = kinds_by_key()
    data = request.POST if request.method == "POST" else None
    key = (data or request.GET).get("kind") or (FIRST_KIND if FIRST_KIND in kinds else next(iter(kinds), ""))
    context = {"idea": idea, "kinds": list(kinds.values()), "chosen": key}
    kind = kinds.get(key)
    if kind is None:
        context["kind_error"] = f"There is no experiment kind {key!r}; choose one of the list."
        return render(request, "experiments/spec_form.html", context, status=400)

    # Criteria are for hypotheses: a verdict moves a hypothesis' status and nothing else's.
    is_hypothesis = idea.kind == IdeaKind.HYPOTHESIS
    form = SpecForm(data, kind=kind, allow_criterion=is_hypothesis and user_can_edit_idea(request.user, idea))
    context.update(
        kind=kind,
        kind_doc=doc_paragraphs(kind.doc),
        form=form,
        is_hypothesis=is_hypothesis,
        params_schema=params_schema_of(kind),  # for static/js/param_form.js, through json_script
    )
    if data is None:
        return render(request, "experiments/spec_form.html", context)
    if form.is_valid():
        try:
            spec = spec_create(
                idea=idea,
                user=request.user,
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                kind=kind.key,
                params=form.params_value(),
                seed=form.cleaned_data["seed"],
                criterion=form.criterion(),
            )  # PermissionDenied -> the 403 page
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Added the experiment “{spec.title}”. Press Run to queue it.")
            return redirect(f"{idea.get_absolute_url()}#experiments")
    return render(request, "experiments/spec_form.html", context, status=400)
