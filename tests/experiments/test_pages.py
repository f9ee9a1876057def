"""The experiment pages end to end: the idea page's Experiments section, Run/Replicate/Cancel,
the add-an-experiment form built from a kind's schema, the run page, downloads, status JSON
and the runs list.

No broker: `_send` is replaced as in test_services.py, and runs execute in-process with
`run_execute`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Literal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pydantic import Field

from experiments.engine.params import KindParams
from experiments.engine.registry import Kind, KindResult
from experiments.forms import SpecForm
from experiments.models import Artifact, ExperimentRun, ExperimentSpec, RunStatus
from experiments.services import run_execute, run_trigger, spec_create
from ideas.models import IdeaKind
from tests.factories import IdeaFactory, StaffFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

SUPPORT_IF_FIVE_STEPS = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}


@pytest.fixture
def author(db):
    return UserFactory(username="author")


@pytest.fixture
def hypothesis(author):
    return IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author, title="Induction heads form in 2L models")


@pytest.fixture
def author_client(client, author):
    client.force_login(author)
    return client


def smoke_spec(idea, user, *, title="Count to three", criterion=None, seed=0, **params) -> ExperimentSpec:
    return spec_create(
        idea=idea, user=user, title=title, kind="smoke", params=params or {"steps": 3}, seed=seed, criterion=criterion
    )


def executed(spec, user, **kwargs) -> ExperimentRun:
    run = run_trigger(spec=spec, user=user, **kwargs).run
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def html_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def run_url(spec) -> str:
    return reverse("spec-run", kwargs={"pk": spec.pk})


def add_url(idea) -> str:
    return reverse("spec-create", kwargs={"pk": idea.pk})


# --- the idea page ----------------------------------------------------------------------------------------


def test_idea_page_lists_specs_with_params_criterion_and_runs_newest_first(client, hypothesis, author):
    spec = smoke_spec(hypothesis, author, criterion=SUPPORT_IF_FIVE_STEPS, seed=7, steps=3, delay_seconds=0.5)
    first = executed(spec, author)
    second = executed(spec, author, force=True)
    queued = run_trigger(spec=spec, user=author, force=True).run

    html = html_of(client.get(hypothesis.get_absolute_url()))
    section = html[html.index('id="experiments"') : html.index('id="status-history"')]
    assert "Count to three" in section
    assert "Smoke test (counts steps)" in section
    assert "seed 7" in section
    assert '<code class="param">steps=3</code>' in section
    assert '<code class="param">delay_seconds=0.5</code>' in section
    assert "fail_at_step" not in section  # unset params are not noise
    assert "supports the hypothesis if steps_completed ≥ 5, else refutes" in section
    positions = [section.index(f'href="/runs/{run.pk}/"') for run in (queued, second, first)]
    assert positions == sorted(positions)  # newest first
    assert "run-status-succeeded" in section and "Succeeded" in section
    assert "verdict-refutes" in section  # 3 steps < 5
    assert "steps_completed = 3" in section
    # The queued run has a live progress bar runs.js polls.
    assert f'data-status-url="/runs/{queued.pk}/status.json"' in section
    assert 'role="progressbar"' in section and 'aria-valuenow="0"' in section
    assert "waiting for a worker" in section
    assert ">Replicate</button>" in section
    assert "Add an experiment" not in section  # anonymous


def test_idea_page_offers_adding_an_experiment_to_signed_in_users_and_hides_replicate_before_success(
    author_client, hypothesis, author
):
    smoke_spec(hypothesis, author)
    html = html_of(author_client.get(hypothesis.get_absolute_url()))
    assert f'href="{add_url(hypothesis)}"' in html
    assert ">Run</button>" in html
    assert ">Replicate</button>" not in html
    assert "Not run yet." in html


def test_idea_page_without_specs_says_so(client, hypothesis):
    html = html_of(client.get(hypothesis.get_absolute_url()))
    assert "No experiments yet." in html


def _idea_page_queries(client, idea) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(idea.get_absolute_url())
    assert response.status_code == 200
    return len(queries)


def test_idea_page_query_count_does_not_grow_with_specs_and_runs(author_client, hypothesis, author):
    def add_spec(n: int) -> None:
        spec = smoke_spec(hypothesis, author, title=f"spec {n}", criterion=SUPPORT_IF_FIVE_STEPS, steps=n + 1)
        executed(spec, author)
        run_trigger(spec=spec, user=author, force=True)

    add_spec(0)
    one = _idea_page_queries(author_client, hypothesis)
    for n in range(1, 5):
        add_spec(n)
    five = _idea_page_queries(author_client, hypothesis)
    assert ExperimentSpec.objects.count() == 5 and ExperimentRun.objects.count() == 10
    assert one == five


# --- Run, Replicate ---------------------------------------------------------------------------------------


def test_run_button_queues_a_run_and_says_so(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    response = author_client.post(run_url(spec), follow=True)
    run = ExperimentRun.objects.get()
    assert run.status == RunStatus.QUEUED and run.created_by == author and not run.forced
    assert response.redirect_chain[-1][0] == f"{hypothesis.get_absolute_url()}#spec-{spec.pk}"
    assert messages_of(response) == [f"Queued run {run.pk}."]

    again = author_client.post(run_url(spec), follow=True)
    assert ExperimentRun.objects.count() == 1  # a double click never makes two runs
    assert messages_of(again) == [f"Run {run.pk} is already queued."]


def test_run_button_shows_the_cached_run_of_an_identical_spec(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    done = executed(spec, author)
    response = author_client.post(run_url(spec), follow=True)
    assert ExperimentRun.objects.count() == 1
    assert messages_of(response)[0].startswith(f"Already succeeded: showing cached run {done.pk}")


def test_replicate_queues_a_forced_run_and_can_show_it(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    done = executed(spec, author)
    response = author_client.post(run_url(spec), {"force": "1"}, follow=True)
    replication = ExperimentRun.objects.exclude(pk=done.pk).get()
    assert replication.forced and replication.status == RunStatus.QUEUED
    assert messages_of(response) == [f"Queued run {replication.pk} (a replication)."]

    from_run_page = author_client.post(run_url(spec), {"force": "1", "show": "run"})
    newest = ExperimentRun.objects.order_by("-pk").first()
    assert from_run_page["Location"] == newest.get_absolute_url()


def test_anonymous_run_is_sent_to_log_in_and_back(client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    response = client.post(run_url(spec))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    assert f"spec-{spec.pk}" in response["Location"]
    assert not ExperimentRun.objects.exists()


def test_run_quota_is_a_429_with_the_reason(author_client, hypothesis, author, settings):
    settings.RUN_QUEUE_CAP_PER_USER = 1
    first, second = smoke_spec(hypothesis, author, title="a"), smoke_spec(hypothesis, author, title="b", steps=4)
    author_client.post(run_url(first))
    response = author_client.post(run_url(second))
    assert response.status_code == 429
    assert "You have 1 queued runs" in html_of(response)
    assert ExperimentRun.objects.count() == 1


def test_a_spec_that_no_longer_validates_is_a_400_naming_the_field(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    ExperimentSpec.objects.filter(pk=spec.pk).update(params={"steps": 0})
    response = author_client.post(run_url(spec))
    assert response.status_code == 400
    assert "params.steps" in html_of(response)
    assert not ExperimentRun.objects.exists()


def test_run_of_an_unknown_spec_is_404_and_get_is_refused(author_client):
    assert author_client.post(reverse("spec-run", kwargs={"pk": 999})).status_code == 404
    assert author_client.get(reverse("spec-run", kwargs={"pk": 999})).status_code == 405


# --- adding an experiment ---------------------------------------------------------------------------------


def test_spec_form_is_built_from_the_kind_schema(author_client, hypothesis):
    response = author_client.get(add_url(hypothesis), {"kind": "smoke"})
    assert response.status_code == 200
    html = html_of(response)
    steps = re.search(r'<input type="number" name="params\.steps"[^>]*>', html).group(0)
    assert 'min="1"' in steps and 'max="10000"' in steps and 'value="10"' in steps and 'step="1"' in steps
    assert '<label for="id_params.steps">Steps</label>' in html
    assert "How many steps to count. From 1 to 10000. Default: 10." in html
    delay = re.search(r'<input type="number" name="params\.delay_seconds"[^>]*>', html).group(0)
    assert 'step="any"' in delay and 'max="60.0"' in delay
    fail_at = re.search(r'<input type="number" name="params\.fail_at_step"[^>]*>', html).group(0)
    assert "required" not in fail_at and "value=" not in fail_at
    assert "Optional: leave empty for none." in html
    # The idea's author may pre-register a criterion: the kind's metrics, with their meanings.
    assert '<option value="steps_completed">steps_completed — How many steps ran.</option>' in html
    assert 'name="criterion.threshold"' in html


def test_spec_form_hides_the_criterion_from_those_who_may_not_set_one(client, hypothesis):
    client.force_login(UserFactory())
    html = html_of(client.get(add_url(hypothesis), {"kind": "smoke"}))
    assert 'name="params.steps"' in html
    assert 'name="criterion.metric"' not in html
    assert "Only the idea’s author or staff can pre-register a criterion" in html


def test_spec_form_needs_a_signed_in_user_and_a_known_kind(client, author, hypothesis):
    response = client.get(add_url(hypothesis))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    author_client = client
    author_client.force_login(author)
    unknown = author_client.get(add_url(hypothesis), {"kind": "nope"})
    assert unknown.status_code == 400
    assert "There is no experiment kind &#x27;nope&#x27;" in html_of(unknown)
    assert author_client.get(reverse("spec-create", kwargs={"pk": 99999})).status_code == 404


def form_data(**overrides) -> dict[str, str]:
    data = {"kind": "smoke", "title": "Count to three", "description": "", "seed": "0", "params.steps": "3"}
    data.update(overrides)
    return data


def test_bad_params_show_the_service_message_next_to_the_field(author_client, hypothesis):
    response = author_client.post(add_url(hypothesis), form_data(**{"params.steps": "0"}))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["params.steps"] == ["Input should be greater than or equal to 1"]
    html = html_of(response)
    assert (
        '<ul class="errorlist" id="id_params.steps_error"><li>Input should be greater than or equal to 1</li>' in html
    )
    assert 'value="0"' in html  # what was typed stays
    assert not ExperimentSpec.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"params.steps": "many"}, "params.steps", "Enter a whole number."),
        ({"title": "   "}, "title", "This field is required."),
        ({"seed": "-1"}, "seed", "Must be an integer from 0 to"),
        ({"criterion.metric": "steps_completed", "criterion.threshold": ""}, "criterion.threshold", "finite number"),
        ({"criterion.threshold": "5"}, "criterion.metric", "Choose the metric the threshold applies to."),
    ],
)
def test_each_bad_field_gets_its_own_message(author_client, hypothesis, overrides, field, message):
    data = form_data(**{"criterion.comparator": ">=", "criterion.if_met": "supports", **overrides})
    response = author_client.post(add_url(hypothesis), data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])


def test_adding_a_spec_creates_it_and_returns_to_the_experiments(author_client, hypothesis, author):
    data = form_data(
        **{
            "params.delay_seconds": "0.25",
            "params.fail_at_step": "",
            "seed": "42",
            "description": "Three steps are enough.",
            "criterion.metric": "steps_completed",
            "criterion.comparator": ">=",
            "criterion.threshold": "3",
            "criterion.if_met": "supports",
            "criterion.otherwise": "inconclusive",
        }
    )
    response = author_client.post(add_url(hypothesis), data)
    assert response.status_code == 302
    assert response["Location"] == f"{hypothesis.get_absolute_url()}#experiments"
    spec = ExperimentSpec.objects.get()
    assert (spec.title, spec.kind, spec.seed, spec.author, spec.idea) == (
        "Count to three",
        "smoke",
        42,
        author,
        hypothesis,
    )
    assert spec.params["steps"] == 3 and spec.params["delay_seconds"] == 0.25 and spec.params["fail_at_step"] is None
    assert spec.criterion == {
        "metric": "steps_completed",
        "comparator": ">=",
        "threshold": 3.0,
        "if_met": "supports",
        "otherwise": "inconclusive",
    }
    page = html_of(author_client.get(response["Location"]))
    assert "Added the experiment “Count to three”" in page
    assert "supports the hypothesis if steps_completed ≥ 3, else inconclusive" in page


def test_a_forged_criterion_from_someone_who_may_not_set_one_is_ignored(client, hypothesis):
    client.force_login(UserFactory())
    data = form_data(**{"criterion.metric": "steps_completed", "criterion.threshold": "3"})
    # The form has no criterion fields for this user, so a forged criterion is ignored...
    assert client.post(add_url(hypothesis), data).status_code == 302
    assert ExperimentSpec.objects.get().criterion is None


def test_a_criterion_the_service_refuses_is_the_403_page(client, hypothesis, monkeypatch):
    from experiments.views import specs as specs_views

    # ...and should the form ever offer one, the service still says no.
    monkeypatch.setattr(specs_views, "user_can_edit_idea", lambda user, idea: True)
    client.force_login(UserFactory())
    data = form_data(
        **{
            "criterion.metric": "steps_completed",
            "criterion.comparator": ">=",
            "criterion.threshold": "3",
            "criterion.if_met": "supports",
        }
    )
    response = client.post(add_url(hypothesis), data)
    assert response.status_code == 403
    assert "Only the idea&#x27;s author or staff can pre-register a criterion" in html_of(response)


class Inner(KindParams):
    width: int = Field(4, ge=1, le=64)


class Native(KindParams):
    source: Literal["native"] = "native"
    inner: Inner = Inner()


class FromRun(KindParams):
    source: Literal["run"] = "run"
    run: int = Field(ge=1)


class RichParams(KindParams):
    """Every shape of param the form builder knows."""

    layers: int = Field(2, ge=1, le=12, description="How many layers.")
    rate: float = Field(0.1, gt=0, le=1)
    attn_only: bool = True
    act_fn: Literal["gelu", "relu"] = "gelu"
    norm: Literal["LN", "RMS"] | None = "LN"
    name: str | None = Field(None, max_length=20)
    inner: Inner = Inner()
    widths: list[int] = [1, 2]
    label: str
    model: Annotated[Native | FromRun, Field(discriminator="source")]


RICH = Kind(
    key="rich",
    title="Rich",
    doc="Test kind.",
    params_model=RichParams,
    metrics={"score": "A score."},
    run=lambda params, ctx: KindResult(),
)


def test_form_builder_handles_booleans_literals_optionals_and_nested_json():
    form = SpecForm(kind=RICH, allow_criterion=False)
    html = str(form["params.attn_only"]) + str(form["params.act_fn"]) + str(form["params.norm"])
    assert 'type="checkbox"' in html and "checked" in html
    assert '<option value="gelu" selected>gelu</option>' in html and '<option value="relu">relu</option>' in html
    assert '<option value="">— none —</option>' in html
    inner = str(form["params.inner"])
    assert "<textarea" in inner and "&quot;width&quot;: 4" in inner
    assert form.fields["params.label"].required
    assert "More than 0." in form.fields["params.rate"].help_text
    # A required tagged union: its alternatives named, prefilled with the first one's defaults.
    assert "“source” is one of native, run." in form.fields["params.model"].help_text
    assert json.loads(form["params.model"].value()) == {"source": "native", "inner": {"width": 4}}

    data = {
        "kind": "rich",
        "title": "t",
        "seed": "1",
        "params.layers": "3",
        "params.rate": "0.5",
        "params.act_fn": "relu",
        "params.norm": "",
        "params.name": "",
        "params.inner": '{"width": 8}',
        "params.widths": "[3, 4]",
        "params.label": "x",
        "params.model": '{"source": "run", "run": 3}',
    }  # attn_only unchecked
    form = SpecForm(data, kind=RICH, allow_criterion=False)
    assert form.is_valid(), form.errors
    assert form.params() == {
        "layers": 3,
        "rate": 0.5,
        "attn_only": False,
        "act_fn": "relu",
        "inner": {"width": 8},
        "widths": [3, 4],
        "label": "x",
        "model": {"source": "run", "run": 3},
    }
    RICH.parse_params(form.params())  # what the form builds, the kind accepts

    bad = SpecForm({**data, "params.inner": "{width: 8"}, kind=RICH, allow_criterion=False)
    assert not bad.is_valid()
    assert bad.errors["params.inner"][0].startswith("Not valid JSON")


def test_nested_param_errors_land_on_their_parent_field():
    from django.core.exceptions import ValidationError

    data = {"kind": "rich", "title": "t", "seed": "0", "params.label": "x", "params.model": '{"source": "native"}'}
    form = SpecForm(data, kind=RICH, allow_criterion=False)
    assert form.is_valid(), form.errors
    assert not SpecForm({**data, "params.model": ""}, kind=RICH, allow_criterion=False).is_valid()  # required
    form.add_service_errors(ValidationError({"params.inner.width": ["too wide"], "params": ["bad"], "kind": ["no"]}))
    assert form.errors["params.inner"] == ["width: too wide"]
    assert form.non_field_errors() == ["params: bad", "kind: no"]


# --- the run page -----------------------------------------------------------------------------------------


def write_artifact(settings, run, name, content: bytes, artifact_type="json", filename=None) -> Artifact:
    relative = f"runs/{run.pk}/1/{filename or name + '.json'}"
    path = settings.ARTIFACT_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Artifact.objects.create(
        run=run,
        name=name,
        path=relative,
        artifact_type=artifact_type,
        content_type="application/json",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


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


def test_artifact_download_is_an_attachment_and_missing_ones_are_404(client, hypothesis, author, settings):
    run = executed(smoke_spec(hypothesis, author), author)
    content = b'{"loss": [1.0, 0.5]}'
    write_artifact(settings, run, "loss-curve", content)
    response = client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "loss-curve"}))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-loss-curve.json"'
    assert response["Content-Type"] == "application/json"

    assert client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "nope"})).status_code == 404
    gone = write_artifact(settings, run, "gone", b"{}")
    (settings.ARTIFACT_ROOT / gone.path).unlink()
    assert client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "gone"})).status_code == 404
    Artifact.objects.filter(pk=gone.pk).update(path="../../etc/passwd")
    assert client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "gone"})).status_code == 404


def test_a_failed_run_shows_its_error_and_an_active_one_its_progress(client, hypothesis, author):
    failed = executed(smoke_spec(hypothesis, author, steps=5, fail_at_step=2), author)
    html = html_of(client.get(failed.get_absolute_url()))
    assert "run-status-failed" in html
    assert '<pre class="run-error">' in html and "Failing at step 2 as asked" in html

    active = run_trigger(spec=smoke_spec(hypothesis, author, title="slow", steps=9), user=author).run
    ExperimentRun.objects.filter(pk=active.pk).update(
        status=RunStatus.RUNNING, progress=0.4, progress_message="step 4/9", series={"count": [[1, 1], [2, 2]]}
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


# --- cancel -----------------------------------------------------------------------------------------------


def test_only_the_runs_starter_the_ideas_author_or_staff_may_cancel(client, hypothesis, author):
    starter = UserFactory()
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=starter).run
    cancel = reverse("run-cancel", kwargs={"pk": run.pk})

    anonymous = client.post(cancel)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))

    client.force_login(UserFactory())
    assert "Cancel run" not in html_of(client.get(run.get_absolute_url()))
    refused = client.post(cancel)
    assert refused.status_code == 403
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED

    client.force_login(starter)
    assert "Cancel run" in html_of(client.get(run.get_absolute_url()))
    response = client.post(cancel, follow=True)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert messages_of(response) == [f"Cancelled run {run.pk}."]
    assert response.redirect_chain[-1][0] == run.get_absolute_url()


def test_cancelling_a_running_run_asks_it_to_stop(client, hypothesis, author):
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=author).run
    ExperimentRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    client.force_login(StaffFactory())
    response = client.post(reverse("run-cancel", kwargs={"pk": run.pk}), follow=True)
    run.refresh_from_db()
    assert run.cancel_requested and run.status == RunStatus.RUNNING
    assert messages_of(response) == [f"Asked run {run.pk} to stop; it stops at its next step."]


# --- the runs list ----------------------------------------------------------------------------------------


def test_run_list_filters_by_status_and_spec_and_pages(client, hypothesis, author, monkeypatch):
    first, second = smoke_spec(hypothesis, author, title="first"), smoke_spec(hypothesis, author, title="second")
    done = executed(first, author)
    queued = run_trigger(spec=second, user=author).run

    html = html_of(client.get(reverse("run-list")))
    assert f'href="/runs/{done.pk}/"' in html and f'href="/runs/{queued.pk}/"' in html
    assert '<a href="/runs/">Runs</a>' in html or 'href="/runs/" aria-current="page">Runs' in html

    succeeded = client.get(reverse("run-list"), {"status": "succeeded"})
    assert [line.run for line in succeeded.context["lines"]] == [done]
    by_spec = client.get(reverse("run-list"), {"spec": second.pk})
    assert [line.run for line in by_spec.context["lines"]] == [queued]
    assert f'data-status-url="/runs/{queued.pk}/status.json"' in html_of(by_spec)

    from experiments.views import runs as runs_views

    monkeypatch.setattr(runs_views, "RUNS_PAGE_SIZE", 1)
    page_two = client.get(reverse("run-list"), {"page": 2})
    assert [line.run for line in page_two.context["lines"]] == [done]
    assert 'rel="prev"' in html_of(page_two)


@pytest.mark.parametrize(
    ("query", "message"),
    [({"status": "exploded"}, "Unknown run status &#x27;exploded&#x27;"), ({"spec": "x"}, "spec must be a number")],
)
def test_run_list_bad_filters_are_a_400_that_says_why(client, query, message):
    response = client.get(reverse("run-list"), query)
    assert response.status_code == 400
    assert message in html_of(response)


# --- escaping ---------------------------------------------------------------------------------------------

XSS = "<script>alert('x')</script>"


def test_titles_descriptions_params_errors_and_series_names_are_escaped(client, hypothesis, author, settings):
    spec = smoke_spec(hypothesis, author, title=f"Title {XSS}", steps=2)
    run = run_trigger(spec=spec, user=author, dispatch=False).run
    ExperimentSpec.objects.filter(pk=spec.pk).update(description=f"Desc {XSS}", params={"steps": 2, "note": XSS})
    ExperimentRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED,
        error=f"Traceback {XSS}",
        metrics={XSS: 1.0},
        series={f"</script>{XSS}": [[1, 1.0]]},
        manifest={"git_commit": XSS, "params": {"note": XSS}},
        progress_message=XSS,
    )
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


@pytest.mark.django_db
def test_run_list_refuses_ids_too_large_for_the_database(client):
    response = client.get("/runs/?spec=99999999999999999999999")
    assert response.status_code == 400
