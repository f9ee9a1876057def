"""The run page reads top to bottom as a researcher reads a result: verdict, findings, headline figure, each
part's details, metrics one row per part, artifacts grouped, log, manifest."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Artifact, RunStatus
from tests.experiments.views.conftest import SUPPORT_IF_FIVE_STEPS, executed, html_of, write_artifact
from tests.factories import ExperimentRunFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def checkpoint(settings, run, name: str, step: int, part: str) -> Artifact:
    artifact = write_artifact(settings, run, name, b"weights", artifact_type="checkpoint", filename=f"{name}.bin")
    artifact.meta = {"step": step, "part": part}
    artifact.save()
    return artifact


def test_a_composite_run_leads_with_findings_then_headline_then_parts_metrics_artifacts(
    client, hypothesis, author, settings
):
    run = executed(smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=6, parts=2), author)
    figure = json.dumps({"data": [], "layout": {"title": {"text": "by part"}}}).encode()
    headline = write_artifact(settings, run, "overview", figure, artifact_type="plotly")
    run.headline = headline.name
    run.save()
    part_figure = write_artifact(settings, run, "P1-detail", figure, artifact_type="plotly")
    part_figure.meta = {"part": "P1"}
    part_figure.save()
    for step in (100, 20, 1000):
        checkpoint(settings, run, f"P2-checkpoint-{step}", step, "P2")

    html = html_of(client.get(run.get_absolute_url()))
    order = [
        html.index('id="evidence-heading"'),
        html.index('id="findings-heading"'),
        html.index("/artifacts/overview/"),
        html.index('id="charts-heading"'),
        html.index('id="parts-heading"'),
        html.index('id="metrics-heading"'),
        html.index('id="artifacts-heading"'),
        html.index('id="log-heading"'),
        html.index('id="manifest-heading"'),
    ]
    assert order == sorted(order)
    assert "<li>Counted 6 steps; their sum is 21, as expected.</li>" in html
    # Each part collapsed with its findings; its figure drawn only when opened.
    assert '<details class="part-details" id="part-P1">' in html
    assert "<li>Counted steps 4 to 6; their sum is 15.</li>" in html
    assert f'class="chart-plot js-plotly-artifact" data-src="/runs/{run.pk}/artifacts/P1-detail/"' in html
    # Metrics: a row per part, a column per part metric; the run's own metrics below, without the P1_… copies.
    table = re.search(r'<table class="data-table metrics-table part-metrics">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r"<th scope=\"row\">(.*?)</th>", table) == ["part 1", "part 2"]
    assert "<code>steps</code>" in table and "<code>sum</code>" in table
    assert '<td class="num">3</td><td class="num">15</td>' in table
    assert "<code>P1_sum</code></th>" not in html and "<code>steps_completed</code></th>" in html
    # One chart for the count, drawn with a line per part.
    assert html.count('class="chart" data-metric="count"') == 1 and "The step&#x27;s number by step" in html
    labels = json.loads(
        re.search(r'<script id="run-chart-labels" type="application/json">(.*?)</script>', html).group(1)
    )
    assert labels["parts"] == {"P1": "part 1", "P2": "part 2"}
    # Checkpoints collapsed into one row with a count and a step range, sorted by step.
    assert "3 checkpoints, steps 20 to 1000" in html
    listed = re.findall(r"<code>(P2-checkpoint-\d+)</code></a>", html)
    assert listed == ["P2-checkpoint-20", "P2-checkpoint-100", "P2-checkpoint-1000"]
    assert '<th colspan="5" scope="rowgroup">part 2</th>' in html
    # The log: stages, not every step.
    assert "part 1: finished" in html and "<strong>warning</strong>" not in html


def test_a_partial_run_says_so_and_gives_no_verdict(client, hypothesis, author):
    run = executed(
        smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=6, parts=3, fail_at_step=5), author
    )
    html = html_of(client.get(run.get_absolute_url()))
    assert run.partial and run.status == RunStatus.FAILED
    assert '<span class="badge partial">partial</span> The run was failed after 2 of its parts finished' in html
    assert "<li>part 2: Counted steps 3 to 4; their sum is 7.</li>" in html
    assert "A partial run gives no verdict" in html


def test_a_running_run_shows_elapsed_time_and_time_left(client, hypothesis, author):
    now = timezone.now()
    run = ExperimentRunFactory(
        spec=smoke_spec(hypothesis, author, steps=9),
        status=RunStatus.RUNNING,
        progress=0.5,
        started_at=now - timedelta(seconds=125),
        estimated_finish_at=now + timedelta(seconds=130),
        log=[
            {"t": 0.0, "level": "info", "message": "step 1/9"},
            {"t": 3.5, "level": "warning", "message": "UserWarning: x"},
        ],
    )
    html = html_of(client.get(run.get_absolute_url()))
    assert re.search(r'Running for <span class="js-run-elapsed">2 min [56] s</span>', html)
    assert re.search(r'about <span class="js-run-left">2 min (9|10) s</span> left', html)
    assert "2 lines, 1 warning" in html and '<li class="log-warning">' in html
    body = client.get(f"/runs/{run.pk}/status.json").json()
    assert 124 <= body["elapsed_seconds"] <= 130 and 120 <= body["seconds_left"] <= 130
    assert body["log"][1]["level"] == "warning"
