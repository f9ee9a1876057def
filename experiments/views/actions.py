"""Buttons that change runs: Run and Replicate on a spec, Cancel on a run.

Plain form POSTs that answer with a redirect and a message, so they work
without JavaScript. Anonymous callers are sent to log in and come back. A
refusal says why: bad input is a 400 and the run quota a 429, each with the
service's message; other missing rights are the 403 page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from experiments.errors import RunQuotaExceeded
from experiments.models import RunStatus
from experiments.services import run_cancel, run_trigger
from experiments.views.common import run_or_404, spec_or_404
from pages.shortcuts import error_messages, refused, safe_next


def _trigger_message(result) -> str:
    run = result.run
    if result.cached:
        return f"Already succeeded: showing cached run {run.pk}. Press Replicate to run it again anyway."
    if not result.created:
        return f"Run {run.pk} is already {RunStatus(run.status).label.lower()}."
    return f"Queued run {run.pk}{' (a replication)' if run.forced else ''}."


@require_POST
def spec_run_action(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /specs/<pk>/run/: queue a run of the spec; `force=1` replicates despite a cached result.

    Back to `next` (by default the spec on its idea's page), or to the run's own page with `show=run`.
    """
    spec = spec_or_404(pk)
    back = safe_next(request, default=f"{spec.idea.get_absolute_url()}#spec-{spec.pk}")
    if not request.user.is_authenticated:
        return redirect_to_login(back)
    try:
        result = run_trigger(spec=spec, user=request.user, force=request.POST.get("force") == "1")
    except RunQuotaExceeded as error:
        return refused(request, str(error), status=429, back=back)
    except ValidationError as error:
        message = "This experiment cannot run as written: " + "; ".join(error_messages(error))
        return refused(request, message, status=400, back=back)
    messages.success(request, _trigger_message(result))
    if request.POST.get("show") == "run":
        return redirect(result.run)
    return redirect(back)


@require_POST
def run_cancel_action(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /runs/<pk>/cancel/: whoever started the run, the idea's author or staff stop it."""
    run = run_or_404(pk)
    if not request.user.is_authenticated:
        return redirect_to_login(run.get_absolute_url())
    was = run.status
    run = run_cancel(run=run, user=request.user)  # PermissionDenied -> the 403 page
    if run.status == RunStatus.CANCELLED and was != RunStatus.CANCELLED:
        messages.success(request, f"Cancelled run {run.pk}.")
    elif run.cancel_requested and run.status == RunStatus.RUNNING:
        messages.success(request, f"Asked run {run.pk} to stop; it stops at its next step.")
    else:
        messages.info(request, f"Run {run.pk} had already {RunStatus(run.status).label.lower()}; nothing to cancel.")
    return redirect(run)
