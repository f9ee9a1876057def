"""The spec or run a page's address names, or the 404 page."""

from __future__ import annotations

from experiments.models import ExperimentRun, ExperimentSpec
from experiments.selectors import run_get, spec_get
from pages.shortcuts import get_or_404


def run_or_404(pk: int) -> ExperimentRun:
    return get_or_404(run_get, f"There is no run {pk}.", pk=pk)


def spec_or_404(pk: int) -> ExperimentSpec:
    return get_or_404(spec_get, f"There is no experiment {pk}.", pk=pk)
