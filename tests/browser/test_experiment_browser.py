"""The experiment pages in a real browser: add a spec through its form, run it, watch it live.

Drives the Debian Chromium at /usr/bin/chromium through Playwright against pytest-django's
live server. There is no broker: `_send` starts `run_execute` in a background thread a moment
later, the way a worker would pick the run up, and the smoke kind sleeps between steps so the
progress is visible. Screenshots land in /tmp/exp-idea.png and /tmp/exp-run.png.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from experiments.models import ExperimentRun, ExperimentSpec, RunStatus
from experiments.services import run_execute, run_trigger
from experiments.services import runs as runs_module
from ideas.models import IdeaKind
from ideas.services import idea_create
from tests.conftest import needs_chromium
from tests.factories import PASSWORD, UserFactory, smoke_spec

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def in_process_worker(monkeypatch, settings, tmp_path) -> Iterator[list[threading.Thread]]:
    """Each sent run executes in a thread half a second later; every thread is joined at the end."""
    settings.ARTIFACT_ROOT = tmp_path
    settings.RUN_HEARTBEAT_SECONDS = 0.2  # progress reaches the database five times a second
    threads: list[threading.Thread] = []

    def work(run_id: int) -> None:
        try:
            run_execute(run_id=run_id, worker="browser-test")
        finally:
            connection.close()  # this thread's own connection

    def send(run: ExperimentRun) -> None:
        thread = threading.Timer(0.5, work, args=[run.pk])
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(runs_module, "_send", send)
    yield threads
    for thread in threads:
        thread.join(timeout=60)


def progress_of(page, selector: str) -> int:
    return int(page.locator(selector).get_attribute("aria-valuenow"))


def wait_for_status(page, selector: str, status: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "([selector, status]) => document.querySelector(selector)?.textContent.trim() === status",
        arg=[selector, status],
        timeout=timeout,
    )


def test_add_a_spec_run_it_and_watch_it_succeed_live(page, live_server, in_process_worker):
    researcher = UserFactory(username="researcher")
    idea = idea_create(
        author=researcher,
        title="Workers count every step exactly once",
        kind=IdeaKind.HYPOTHESIS,
        body="A smoke test of the run platform: each step is counted once, so the sum is n(n+1)/2.",
        tags=["infrastructure"],
    )

    page.goto(f"/accounts/login/?next={idea.get_absolute_url()}")
    page.get_by_label("Username").fill(researcher.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{idea.get_absolute_url()}")
    assert page.locator("#experiments").inner_text().endswith("No experiments yet.")

    # Add a smoke spec through the form the kind's schema builds.
    page.get_by_role("link", name="Add an experiment").click()
    page.wait_for_url(re.compile(r"/ideas/\d+/experiments/new/"))
    page.get_by_label("Kind of experiment").select_option("smoke")  # loads the smoke kind's form
    page.wait_for_url(re.compile(r"/experiments/new/\?kind=smoke$"))
    steps = page.get_by_label("Steps", exact=True)
    assert steps.get_attribute("min") == "1" and steps.get_attribute("max") == "10000"
    page.get_by_label("Title", exact=True).fill("Count to twenty, slowly")
    steps.fill("20")
    page.get_by_label("Delay Seconds").fill("0.2")
    page.get_by_label("Seed").fill("7")
    page.get_by_label("Metric").select_option("steps_completed")
    page.get_by_label("Comparison").select_option(">=")
    page.get_by_label("Threshold").fill("20")
    page.get_by_label("If met, the run").select_option("supports")
    page.screenshot(path="/tmp/exp-form.png", full_page=True)
    page.get_by_role("button", name="Add experiment").click()
    page.wait_for_url(f"**{idea.get_absolute_url()}#experiments")
    spec = ExperimentSpec.objects.get()
    assert spec.params["steps"] == 20 and spec.params["delay_seconds"] == 0.2 and spec.seed == 7
    card = page.locator(f"#spec-{spec.pk}")
    assert "supports the hypothesis if steps_completed ≥ 20, else refutes" in card.inner_text()
    assert "steps = 20" in card.inner_text()

    # Run it: the page comes back with the queued run, then follows it without a reload.
    card.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector(".message")
    run = ExperimentRun.objects.get()
    assert page.locator(".message").inner_text() == f"Queued run {run.pk}."
    page.evaluate("window.__still_this_page = true")
    bar = f'[data-run-id="{run.pk}"] [role="progressbar"]'
    page.wait_for_function(
        "s => { const v = +document.querySelector(s)?.getAttribute('aria-valuenow'); return v > 0 && v < 100; }",
        arg=bar,
    )
    midway = progress_of(page, bar)
    status = f'[data-run-id="{run.pk}"] .js-run-status'
    assert page.locator(status).inner_text() == "Running"
    assert page.locator(f'[data-run-id="{run.pk}"] .js-run-message').inner_text().startswith("step ")
    page.wait_for_function(
        "([selector, before]) => +document.querySelector(selector)?.getAttribute('aria-valuenow') > before",
        arg=[bar, midway],
    )  # it moves
    page.screenshot(path="/tmp/exp-idea-running.png", full_page=True)

    wait_for_status(page, status, "Succeeded")
    # Once finished, the page swaps in the fresh section: verdict, duration and the idea's new status.
    page.wait_for_selector(f'[data-run-id="{run.pk}"] .verdict-supports')
    assert page.evaluate("window.__still_this_page") is True
    assert page.locator(".idea-meta .status-supported").is_visible()
    assert page.locator(f'[data-run-id="{run.pk}"] [role="progressbar"]').count() == 0
    assert "steps_completed = 20" in page.locator(f'[data-run-id="{run.pk}"]').inner_text()
    # The header's evidence line and the card's latest result came with it.
    assert page.locator(".evidence-line").inner_text() == f"1 experiment supports — latest: run {run.pk} (supports)"
    assert card.locator(".latest-result .verdict-supports").is_visible()
    assert ExperimentRun.objects.get().status == RunStatus.SUCCEEDED
    page.locator("#experiments").scroll_into_view_if_needed()
    page.screenshot(path="/tmp/exp-idea.png", full_page=True)

    # The run page: metrics with meanings and a plotly chart of the step series.
    page.get_by_role("link", name=f"Run {run.pk}", exact=True).click()
    page.wait_for_url(f"**/runs/{run.pk}/")
    page.wait_for_selector('.chart[data-metric="count"] .js-plotly-plot svg.main-svg')
    assert "How many steps ran." in page.locator(".metrics-table").inner_text()
    assert page.locator(".manifest").get_by_text(run.spec_hash).is_visible()

    # Replicate from the run page: the new run's page fills its chart and finishes live.
    page.get_by_role("button", name="Run again (replicate)").click()
    page.wait_for_url(re.compile(rf"/runs/(?!{run.pk}/)\d+/$"))
    replication = ExperimentRun.objects.exclude(pk=run.pk).get()
    assert replication.forced
    page.evaluate("window.__still_this_page = true")
    page.wait_for_selector('.chart[data-metric="count"] .js-plotly-plot svg.main-svg', timeout=20_000)
    page.screenshot(path="/tmp/exp-run-running.png", full_page=True)
    wait_for_status(page, ".run-header .js-run-status", "Succeeded")
    page.wait_for_selector(".metrics-table")
    # The swapped-in page draws its chart again from the embedded series.
    page.wait_for_selector('.chart[data-metric="count"] .js-plotly-plot svg.main-svg')
    assert page.locator(".run-live").count() == 0
    assert page.evaluate("window.__still_this_page") is True
    assert page.locator(".run-header .verdict-supports").is_visible()
    page.screenshot(path="/tmp/exp-run.png", full_page=True)


def test_a_composite_run_shows_each_part_as_it_finishes(page, live_server, in_process_worker):
    researcher = UserFactory(username="counter")
    idea = idea_create(author=researcher, title="Counting in parts", kind=IdeaKind.HYPOTHESIS, body="Parts.")
    spec = smoke_spec(idea, researcher, steps=30, delay_seconds=0.25, parts=3)
    run = run_trigger(spec=spec, user=researcher).run

    page.goto(f"/runs/{run.pk}/")
    # The first part's findings appear while the run still works on the others.
    page.locator("#part-P1").wait_for(timeout=30_000)
    assert "Counted steps 1 to 10; their sum is 55." in page.locator("#part-P1 summary").inner_text()
    assert page.locator(".js-run-status").first.inner_text() == "Running"
    page.locator(".js-run-left-wrap:not([hidden])").wait_for(timeout=15_000)  # an estimate of the time left
    page.screenshot(path="/tmp/run-page-live-parts.png", full_page=True)
    page.locator("#part-P3").wait_for(timeout=30_000)  # the page shows the finished run, all its parts
    assert page.locator(".part-details").count() == 3
    assert page.locator(".run-findings li").first.inner_text() == "Counted 30 steps; their sum is 465, as expected."
