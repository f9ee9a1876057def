"""Small helpers the experiment views share."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.models import ExperimentRun, ExperimentSpec
from experiments.selectors import run_get, spec_get


def run_or_404(pk: int) -> ExperimentRun:
    try:
        return run_get(pk=pk)
    except ExperimentRun.DoesNotExist:
        raise Http404(f"There is no run {pk}.") from None


def spec_or_404(pk: int) -> ExperimentSpec:
    try:
        return spec_get(pk=pk)
    except ExperimentSpec.DoesNotExist:
        raise Http404(f"There is no experiment {pk}.") from None


def error_messages(error: ValidationError) -> list[str]:
    """A service's ValidationError as sentences: 'params.steps: Input should be ...'."""
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    return [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]


def refused(request: HttpRequest, message: str, *, status: int, back: str | None = None) -> HttpResponse:
    """A page that says why an action did not happen (400 bad input, 429 over the run quota)."""
    return render(request, "ideas/refused.html", {"message": message, "back": back}, status=status)
