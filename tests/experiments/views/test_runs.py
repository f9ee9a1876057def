"""experiments/views/runs.py: the run page, its status JSON for runs.js, and escaping on every page that
shows a run (the runs list's own tests are in test_run_list.py)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from experiments.models import Artifact, ExperimentSpec, RunStatus
from tests.experiments.views.conftest import SUPPORT_IF_FIVE_STEPS, executed, html_of, write_artifact
from tests.factories import ExperimentRunFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


# --- the run page -----------------------------------------------------------------------------------------


def test_run_page_shows_metrics_charts_evidence_artifacts_and_manifest(client, hypothesis, author, settings):
    spec = smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, steps=6, seed=3)
    run = executed(spec, author)
    content = json.dumps({"loss": [1.0, 0.5]}).encode()
    artifact = write_artifact(settings, run, "loss-curve", content)
    figure = json.dumps({"data": [{"type": "bar", "x": [1, 2], "y": [3, 4]}], "layout": {}}).encode()
    write_artifact(settings, run, "bars", figure, artifact_type="plotly")

    response = client.get(run.get_absolute_url())
    assert response.status_code == 200
    html = html_of(response)
    assert f'href="{hypothesis.get_absolute_url()}#spec-{spec.pk}"' in html
    assert "Run " + str(run.pk) in html and "Count to three" in html
    assert "run-status-succeeded" in html and "verdict-supports" in html
    assert "supports the hypothesis if steps_completed ≥ 5, else refutes" in html
    # Metrics with their meanings from the kind.
    assert '<th scope="row"><code>steps_completed</code></th><td class="num">6</td>' in html
    assert "1 + 2 + ... + steps: a check that every step ran once." in html
    assert '<td class="num">21</td>' in html
    # One chart per series, with the data embedded for runs.js.
    assert html.count('class="chart" data-metric=') == len(run.series) == 1
    assert 'data-metric="count"' in html
    embedded = re.search(r'<script id="run-series" type="application/json">(.*?)</script>', html).group(1)
    assert json.loads(embedded) == {"count": [[n, n] for n in range(1, 7)]}
    assert "plotly/plotly.min.js" in html
    # Artifacts with a download link, and plotly figures drawn on the page.
    download = reverse("artifact-download", kwargs={"pk": run.pk, "name": "loss-curve"})
    assert f'href="{download}"' in html
    assert artifact.sha256[:12] in html and "loss-curve" in html
    assert f'class="chart-plot js-plotly-artifact" data-src="/runs/{run.pk}/artifacts/bars/"' in html
    # The manifest.
    for label in ("Spec hash", "Seed", "Git commit", "Package versions", "Device"):
        assert f"<dt>{label}</dt>" in html
    assert run.spec_hash in html
    assert "Run again (replicate)" in html
    assert "Cancel run" not in html


def test_a_failed_run_shows_its_error_and_an_active_one_its_progress(client, hypothesis, author):
    failed = executed(smoke_spec(hypothesis, author, steps=5, fail_at_step=2), author)
    html = html_of(client.get(failed.get_absolute_url()))
    assert "run-status-failed" in html
    assert '<pre class="run-error">' in html and "Failing at step 2 as asked" in html

    active = ExperimentRunFactory(
        spec=smoke_spec(hypothesis, author, title="slow", steps=9),
        created_by=author,
        status=RunStatus.RUNNING,
        progress=0.4,
        progress_message="step 4/9",
        series={"count": [[1, 1], [2, 2]]},
    )
    html = html_of(client.get(active.get_absolute_url()))
    assert f'data-status-url="/runs/{active.pk}/status.json"' in html
    assert 'aria-valuenow="40"' in html and "step 4/9" in html and "width: 40%" in html
    assert "Run again (replicate)" not in html
    assert "Cancel run" not in html  # anonymous


def test_run_page_of_an_unknown_run_is_404(client):
    assert client.get(reverse("run-detail", kwargs={"pk": 12345})).status_code == 404


def test_status_json_is_the_api_run_with_the_fields_runs_js_reads(client, hypothesis, author):
    run = executed(smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS), author)
    response = client.get(reverse("run-status-json", kwargs={"pk": run.pk}))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body == client.get(f"/api/runs/{run.pk}/").json()  # one JSON shape for a run
    assert body["id"] == run.pk and body["status"] == "succeeded"
    assert body["progress"] == 1.0 and body["progress_message"] == "done"
    assert body["attempts"] == 1 and body["verdict"] == "refutes" and body["error"] == ""
    assert body["metrics"]["steps_completed"] == 3
    assert body["series"] == {"count": [[1, 1], [2, 2], [3, 3]]}
    assert body["finished_at"]
    missing = client.get(reverse("run-status-json", kwargs={"pk": 999}))
    assert missing.status_code == 404 and missing.json()["detail"] == "No run with id 999."


# --- escaping ---------------------------------------------------------------------------------------------

XSS = "<script>alert('x')</script>"


def test_titles_descriptions_params_errors_and_series_names_are_escaped(client, hypothesis, author, settings):
    spec = smoke_spec(hypothesis, author, title=f"Title {XSS}", steps=2)
    run = ExperimentRunFactory(
        spec=spec,
        created_by=author,
        status=RunStatus.FAILED,
        error=f"Traceback {XSS}",
        metrics={XSS: 1.0},
        series={f"</script>{XSS}": [[1, 1.0]]},
        manifest={"git_commit": XSS, "params": {"note": XSS}},
        progress_message=XSS,
    )
    ExperimentSpec.objects.filter(pk=spec.pk).update(description=f"Desc {XSS}", params={"steps": 2, "note": XSS})
    write_artifact(settings, run, "plot", b"{}", artifact_type="plotly")
    Artifact.objects.filter(run=run).update(meta={"title": XSS})

    pages = [
        client.get(hypothesis.get_absolute_url()),
        client.get(run.get_absolute_url()),
        client.get(reverse("run-list")),
    ]
    for response in pages:
        html = html_of(response)
        assert response.status_code == 200
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html or "\\u003Cscript\\u003E" in html
    status = client.get(reverse("run-status-json", kwargs={"pk": run.pk})).json()
    assert status["error"] == f"Traceback {XSS}"  # JSON carries the text; runs.js only ever sets textContent
