"""experiments/views/specs.py and the idea page's Experiments section: the spec cards with their runs,
and the add-an-experiment form built from a kind's schema."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experiments.engine.params_schema import default_params
from experiments.engine.registry import registry
from experiments.models import ExperimentRun, ExperimentSpec
from experiments.services import run_trigger
from tests.experiments.views.conftest import SUPPORT_IF_FIVE_STEPS, add_url, executed, html_of
from tests.factories import UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


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
    assert '<code class="param">steps = 3</code>' in section
    assert '<code class="param">delay_seconds = 0.5</code>' in section
    assert "fail_at_step" not in section  # unset params are not noise
    assert "supports the hypothesis if steps_completed ≥ 5, else refutes" in section
    positions = [section.index(f'<a class="run-link" href="/runs/{run.pk}/"') for run in (queued, second, first)]
    assert positions == sorted(positions)  # newest first (the run lines; the latest result above names one too)
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


# --- adding an experiment ---------------------------------------------------------------------------------


def json_script(html: str, element_id: str):
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def params_textarea(html: str) -> str:
    found = re.search(r'<textarea name="params"[^>]*>(.*?)</textarea>', html, re.S)
    return unescape(found.group(1))


def test_spec_form_carries_the_kind_schema_and_its_defaults_as_json(author_client, hypothesis):
    response = author_client.get(add_url(hypothesis), {"kind": "smoke"})
    assert response.status_code == 200
    html = html_of(response)
    # param_form.js builds the fields from the schema; the textarea is the form without JavaScript.
    assert json_script(html, "params-schema") == registry.get("smoke").params_schema()
    assert json.loads(params_textarea(html)) == {
        "steps": 10,
        "delay_seconds": 0.0,
        "fail_at_step": None,
        "exit_at_step": None,
        "parts": None,
        "time_limit_seconds": None,
    }
    assert '<label for="id_params">Parameters as JSON</label>' in html
    assert 'src="/static/js/param_form.js"' in html
    assert '<ul class="errorlist param-errors" id="id_params_error" hidden>' in html  # no messages yet
    # The idea's author may pre-register a criterion: the kind's metrics, with their meanings.
    assert '<option value="steps_completed">steps_completed — How many steps ran.</option>' in html
    assert 'name="criterion.threshold"' in html


def test_spec_form_opens_with_a_light_kind(author_client, hypothesis):
    html = html_of(author_client.get(add_url(hypothesis)))
    assert '<option value="head_detection" selected>' in html
    assert registry.get("head_detection").device == "cpu"
    nested = json_script(html, "params-schema")
    assert nested["properties"]["model"]["discriminator"]["propertyName"] == "source"
    assert json.loads(params_textarea(html))["model"]["config"]["n_layers"] == 2


def test_spec_form_hides_the_criterion_from_those_who_may_not_set_one(client, hypothesis):
    client.force_login(UserFactory())
    html = html_of(client.get(add_url(hypothesis), {"kind": "smoke"}))
    assert 'name="params"' in html
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


def form_data(params: dict | str | None = None, **overrides) -> dict[str, str]:
    """A POST of the form as param_form.js sends it: the params as one JSON object (a string as typed)."""
    data = {"kind": "smoke", "title": "Count to three", "description": "", "seed": "0"}
    data["params"] = params if isinstance(params, str) else json.dumps({"steps": 3} if params is None else params)
    data.update(overrides)
    return data


def param_message(html: str, path: str) -> str:
    """The message the page attaches to one param's dotted path (param_form.js moves it beside that field)."""
    found = re.search(rf'<li data-param-path="{re.escape(path)}">(.*?)</li>', html, re.S)
    assert found, f"no message for {path}"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def test_bad_params_show_the_service_message_by_the_field_it_names(author_client, hypothesis):
    response = author_client.post(add_url(hypothesis), form_data({"steps": 0, "delay_seconds": 0.5}))
    assert response.status_code == 400
    assert response.context["form"].param_errors == [("steps", "Input should be greater than or equal to 1")]
    html = html_of(response)
    assert param_message(html, "steps") == "steps: Input should be greater than or equal to 1"
    assert '<ul class="errorlist param-errors" id="id_params_error">' in html  # shown, not hidden
    assert json.loads(params_textarea(html)) == {"steps": 0, "delay_seconds": 0.5}  # what was sent stays
    assert not ExperimentSpec.objects.exists()


def test_a_nested_param_and_a_cross_field_check_each_name_their_field(author_client, hypothesis):
    params = json.loads(json.dumps(default_params(registry.get("head_detection"))))
    params["model"]["config"]["n_layers"] = 13
    data = form_data(params, kind="head_detection")
    html = html_of(author_client.post(add_url(hypothesis), data))
    # Pydantic names the chosen alternative (native) in the path; the page's script steps over it.
    assert "Input should be less than or equal to 12" in param_message(html, "model.native.config.n_layers")

    params["model"]["config"].update(n_layers=2, n_ctx=16)  # too short for the default sequences
    response = author_client.post(add_url(hypothesis), form_data(params, kind="head_detection"))
    assert response.status_code == 400
    assert "the model's context is 16" in param_message(html_of(response), "data.half_length")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"params": '{"steps": "many"}'}, "params", "steps: Input should be a valid integer"),
        ({"params": "[3]"}, "params", "Must be a JSON object."),
        ({"params": "{steps: 3}"}, "params", "Not valid JSON"),
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
        {"steps": 3, "delay_seconds": 0.25, "fail_at_step": None},
        **{
            "seed": "42",
            "description": "Three steps are enough.",
            "criterion.metric": "steps_completed",
            "criterion.comparator": ">=",
            "criterion.threshold": "3",
            "criterion.if_met": "supports",
            "criterion.otherwise": "inconclusive",
        },
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
