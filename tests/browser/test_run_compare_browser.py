"""Comparing runs in a real browser: tick two runs on /runs/, press "Compare selected", see their lines overlaid.

Drives the Debian Chromium at /usr/bin/chromium through Playwright against pytest-django's live
server, with the Content-Security-Policy watched. Screenshots land in /tmp/runs-compare-*.png.
"""

from __future__ import annotations

import pytest

from experiments.models import RunStatus
from tests.conftest import needs_chromium
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory

pytestmark = [pytest.mark.browser, needs_chromium]


def test_tick_two_runs_compare_them_and_see_their_series_overlaid(page):
    spec = ExperimentSpecFactory(title="Count to three")
    first, _, third = (
        ExperimentRunFactory(
            spec=spec,
            status=RunStatus.SUCCEEDED,
            seed=seed,
            metrics={"steps_completed": 3},
            series={"loss": [[step, (seed + 1) / (step + 1)] for step in range(5)]},
        )
        for seed in range(3)
    )

    page.goto("/runs/")
    button = page.get_by_role("button", name="Compare selected")
    assert button.is_disabled()  # nothing ticked yet
    page.get_by_label(f"Select run {first.pk} to compare").check()
    assert button.is_disabled()  # one is not enough
    page.get_by_label(f"Select run {third.pk} to compare").check()
    assert button.is_enabled()
    assert "2 selected" in page.locator(".js-compare-hint").inner_text()
    page.screenshot(path="/tmp/runs-compare-list.png", full_page=True)

    button.click()
    page.wait_for_url(f"**/runs/compare/?ids={third.pk},{first.pk}")  # the list is newest first
    assert page.get_by_role("heading", name="Comparing 2 runs").is_visible()
    chart = page.locator('.chart[data-series-index="0"]')
    assert chart.locator("figcaption").inner_text() == "loss by step"
    chart.locator(".main-svg").first.wait_for()
    traces = chart.locator(".scatterlayer .trace")
    traces.nth(1).wait_for()
    assert traces.count() == 2  # one line per run
    assert chart.locator(".legend .legendtext").all_text_contents() == [f"Run {third.pk}", f"Run {first.pk}"]
    page.screenshot(path="/tmp/runs-compare-page.png", full_page=True)
