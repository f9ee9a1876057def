"""A composite run's page in a real browser: its findings first, one chart per metric with a line per part, and
a part's figure drawn when the part is opened.

Drives the Debian Chromium at /usr/bin/chromium through Playwright against pytest-django's live server, with the
Content-Security-Policy watched. A screenshot lands in /tmp/run-page-parts.png.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.conf import settings

from experiments.models import Artifact, RunStatus
from tests.conftest import needs_chromium
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory

pytestmark = [pytest.mark.browser, needs_chromium]


def figure_artifact(run, name: str, part: str) -> Artifact:
    content = json.dumps({"data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}], "layout": {"title": {"text": name}}})
    relative = f"runs/{run.pk}/1/{name}.plotly.json"
    path = settings.ARTIFACT_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return Artifact.objects.create(
        run=run, name=name, path=relative, artifact_type="plotly", content_type="application/json",
        size=len(content), sha256=hashlib.sha256(content.encode()).hexdigest(), meta={"part": part},
    )  # fmt: skip


def test_a_composite_run_overlays_its_parts_and_draws_a_part_figure_when_opened(page):
    parts = [
        {"key": f"L{d}", "label": f"{d} layers", "metrics": {"n_induction_heads": d - 1},
         "findings": [f"{d - 1} induction heads."], "artifacts": [f"L{d}-head_scores"]}
        for d in (1, 2)
    ]  # fmt: skip
    run = ExperimentRunFactory(
        spec=ExperimentSpecFactory(kind="attention_depth_comparison", title="Depths", params={"depths": [1, 2]}),
        kind="attention_depth_comparison",
        status=RunStatus.SUCCEEDED,
        findings=["1 of 2 depths form induction heads: 2 layers (1 head, best 0.6); 1 layer (best 0.02) forms none."],
        parts=parts,
        metrics={"L1_n_induction_heads": 0, "L2_n_induction_heads": 1},
        series={f"L{d}/loss": [[step, 4 - d * step / 100] for step in range(0, 100, 10)] for d in (1, 2)},
    )
    figure_artifact(run, "L2-head_scores", "L2")

    page.goto(f"/runs/{run.pk}/")
    assert page.locator(".findings-list li").first.inner_text().startswith("1 of 2 depths form induction heads")
    chart = page.locator('.chart[data-metric="loss"]')
    assert chart.locator("figcaption").inner_text() == "Training loss (nats per token) by step"
    chart.locator(".scatterlayer .trace").nth(1).wait_for()
    assert chart.locator(".scatterlayer .trace").count() == 2  # a line per depth, in one chart
    assert chart.locator(".legend .legendtext").all_text_contents() == ["1 layers", "2 layers"]
    assert chart.locator(".ytitle").text_content() == "nats per token"

    part = page.locator("#part-L2")
    figure = part.locator(".js-plotly-artifact")
    assert figure.get_attribute("data-drawn") is None  # closed: not drawn yet
    part.locator("summary").click()
    figure.locator(".main-svg").first.wait_for()
    assert part.locator(".findings-list li").inner_text() == "1 induction heads."
    page.screenshot(path="/tmp/run-page-parts.png", full_page=True)


def test_steps_logged_at_log_spaced_intervals_are_drawn_on_a_log_axis(page):
    log_spaced = [[step, 1 / step] for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)]
    run = ExperimentRunFactory(
        status=RunStatus.SUCCEEDED,
        findings=["It grokked."],
        series={"test_accuracy": log_spaced, "loss": [[step, 1 / step] for step in range(10, 5010, 10)]},
    )

    page.goto(f"/runs/{run.pk}/")
    for metric, title in (("test_accuracy", "step (log scale)"), ("loss", "step")):
        chart = page.locator(f'.chart[data-metric="{metric}"]')
        chart.locator(".xtitle").wait_for()
        assert chart.locator(".xtitle").text_content() == title


def test_a_gpu_run_with_no_gpu_worker_says_so_until_one_starts(page):
    from playwright.sync_api import expect

    from experiments.services.workers import worker_queues_record

    run = ExperimentRunFactory(queue="gpu")
    page.goto(f"/runs/{run.pk}/")
    waiting = page.locator(".js-run-waiting")
    assert waiting.is_visible()
    assert waiting.inner_text().startswith("Waiting for a GPU worker: no worker is consuming the gpu queue.")
    message = page.locator(".js-run-message")
    expect(message).to_have_text("waiting for a GPU worker (none is running)")  # after the page's first poll
    page.screenshot(path="/tmp/run-page-waiting-for-gpu.png")
    worker_queues_record(worker="celery@gpu-box", queues=["gpu"])
    waiting.wait_for(state="hidden", timeout=10_000)  # the page's next poll sees the worker
    expect(message).to_have_text("waiting for a worker")


def test_a_running_runs_charts_append_only_new_points_and_start_over_on_a_new_attempt(page):
    """The page polls with ?series_since= (experiments.series), appends what comes with Plotly.extendTraces, and
    drops the points it holds when the run was retried."""
    from django.utils import timezone

    from experiments.models import ExperimentRun

    run = ExperimentRunFactory(
        status=RunStatus.RUNNING, attempts=1, started_at=timezone.now(), worker="host:1", progress=0.2,
        series={"loss": [[0, 4.0], [10, 3.0]]},
    )  # fmt: skip
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/status.json" in request.url else None)
    page.goto(f"/runs/{run.pk}/")
    plot = page.locator('.chart[data-metric="loss"] .chart-plot')
    plot.locator(".scatterlayer .trace").wait_for()
    page.evaluate(
        """() => {
            window.extendCalls = 0;
            const extend = window.Plotly.extendTraces;
            window.Plotly.extendTraces = function () { window.extendCalls += 1; return extend.apply(this, arguments); };
        }"""
    )
    drawn = "(plot) => plot.data[0].x.join(',') + '|' + plot.data[0].y.join(',')"

    ExperimentRun.objects.filter(pk=run.pk).update(series={"loss": [[0, 4.0], [10, 3.0], [20, 2.0], [30, 1.5]]})
    page.wait_for_function(f"(plot) => ({drawn})(plot) === '0,10,20,30|4,3,2,1.5'", arg=plot.element_handle())
    assert page.evaluate("window.extendCalls") >= 1  # appended to the drawn line, not drawn anew
    assert any(url.endswith(f"/runs/{run.pk}/status.json?series_since=10&series_attempt=1") for url in polls), polls

    # The worker died and a second attempt started over: the page shows its points only.
    ExperimentRun.objects.filter(pk=run.pk).update(attempts=2, series={"loss": [[0, 9.0]]})
    page.wait_for_function(f"(plot) => ({drawn})(plot) === '0|9'", arg=plot.element_handle())
    # It goes on polling from the new attempt.
    with page.expect_request(lambda request: "series_since=0&series_attempt=2" in request.url):
        pass
    assert polls and all("series_since=" in url for url in polls), polls  # never the whole run: it was embedded
    page.screenshot(path="/tmp/run-page-series-since.png")


def test_a_series_logged_over_earlier_steps_makes_the_page_fetch_the_run_whole_once(page):
    """Grokking logs its progress measures at each checkpoint after training: steps below the page's cursor. The
    counts in the poll's answer tell the page it lacks them; it fetches the run whole once and draws them."""
    from django.utils import timezone

    from experiments.models import ExperimentRun

    loss = [[step, 1.0] for step in range(0, 1100, 100)]
    run = ExperimentRunFactory(
        status=RunStatus.RUNNING, attempts=1, started_at=timezone.now(), worker="host:1", series={"loss": loss}
    )
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/status.json" in request.url else None)
    page.goto(f"/runs/{run.pk}/")
    page.locator('.chart[data-metric="loss"] .scatterlayer .trace').wait_for()
    with page.expect_request(lambda request: "series_since=1000&series_attempt=1" in request.url):
        pass
    ExperimentRun.objects.filter(pk=run.pk).update(series={"loss": loss, "restricted_loss": [[0, 5.0], [500, 4.0]]})
    plot = page.locator('.chart[data-metric="restricted_loss"] .chart-plot')
    plot.locator(".scatterlayer .trace").wait_for()
    assert page.evaluate("(plot) => plot.data[0].x.join(',')", plot.element_handle()) == "0,500"
    assert any(url.endswith(f"/runs/{run.pk}/status.json") for url in polls), polls  # the one whole fetch
    with page.expect_request(lambda request: "series_since=1000&series_attempt=1" in request.url):
        pass  # then only new points again
