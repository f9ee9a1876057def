"""experiments/views/specs.py and the idea page's Experiments section: the spec cards with their runs,
and the add-an-experiment form built from a kind's schema."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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
    assert '<code class="param">steps=3</code>' in section
    assert '<code class="param">delay_seconds=0.5</code>' in section
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
