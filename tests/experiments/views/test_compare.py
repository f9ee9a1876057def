"""experiments/views/compare.py: /runs/compare/?ids=, two to six runs side by side."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from experiments.engine.registry import registry
from experiments.models import RunStatus, Verdict
from experiments.views.compare import flatten, param_rows
from tests.experiments.views.conftest import html_of
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, UserFactory, _normalized

pytestmark = pytest.mark.django_db

XSS = "<script>alert('x')</script>"


@pytest.fixture
def trio():
    """Three train_transformer runs: the first two differ in lr and model.n_layers, the third is a smoke run."""
    defaults = _normalized("train_transformer", {})
    training = ExperimentSpecFactory(kind="train_transformer", params=defaults, title="Train a small model")
    smoke = ExperimentSpecFactory(title="Count")
    first = ExperimentRunFactory(
        spec=training,
        status=RunStatus.SUCCEEDED,
        verdict=Verdict.SUPPORTS,
        params=defaults | {"lr": 0.001},
        metrics={"final_loss": 0.5, "n_checkpoints": 30},
        series={"loss": [[0, 4.0], [10, 2.0]], "accuracy": [[10, 0.5]]},
    )
    second = ExperimentRunFactory(
        spec=training,
        status=RunStatus.SUCCEEDED,
        seed=7,
        params=defaults | {"lr": 0.01, "model": defaults["model"] | {"n_layers": 1}},
        metrics={"final_loss": 1.25, "in_context_gain": None},
        series={"loss": [[0, 4.1], [10, 3.0]]},
    )
    third = ExperimentRunFactory(spec=smoke, status=RunStatus.FAILED, metrics={}, series={}, created_by=None)
    return first, second, third


def compare(client, ids, **extra):
    return client.get(reverse("run-compare"), {"ids": ",".join(str(pk) for pk in ids), **extra})


def test_the_runs_are_columns_with_kind_status_verdict_seed_and_duration(client, trio):
    first, second, _ = trio
    response = compare(client, [second.pk, first.pk])
    assert response.status_code == 200
    html = html_of(response)
    columns = re.findall(r'data-compare-run="(\d+)"', html)
    assert columns == [str(second.pk), str(first.pk)]
    assert f'<a href="/runs/{second.pk}/">Run {second.pk}</a>' in html
    assert f"{registry.get('train_transformer').title} <code" in html
    assert '<span class="badge verdict verdict-supports">supports</span>' in html
    assert "<td>7</td>" in html and "<td>0</td>" in html


def test_only_params_that_differ_are_rows_with_a_count_of_the_rest(client, trio):
    first, second, _ = trio
    response = compare(client, [first.pk, second.pk])
    differ = {row.name: row.values for row in response.context["params_differ"]}
    assert differ == {"lr": ["0.001", "0.01"], "model.n_layers": ["2", "1"]}
    same = {row.name for row in response.context["params_same"]}
    assert {"steps", "model.d_model", "data.source"} <= same and not same & set(differ)
    html = html_of(response)
    assert "<code>model.n_layers</code>" in html
    assert f"{len(same)} params the same in every run</summary>" in html


def test_params_of_different_kinds_show_what_one_run_lacks(client, trio):
    first, _, third = trio
    differ = {row.name: row.values for row in compare(client, [first.pk, third.pk]).context["params_differ"]}
    assert differ["steps"] == ["3000", "3"]
    assert differ["model.n_layers"] == ["2", "not set"]
    assert differ["delay_seconds"] == ["not set", "0"]


def test_flatten_keeps_lists_and_empty_objects_whole():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": None}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
        "f": None,
    }


def test_values_that_only_look_alike_differ(trio):
    first, second, _ = trio
    first.params = {"list": [1, 2], "float": 1, "text": "1", "flag": True, "none": None, "nested": {"a": 1}}
    second.params = {"list": [1, 2], "float": 1.0, "text": 1, "flag": 1, "none": 0, "nested": {"a": 1}}
    differ, same = param_rows([first, second])
    assert [row.name for row in differ] == ["text", "flag", "none"]
    assert [row.name for row in same] == ["list", "float", "nested.a"]
    assert differ[1].values == ["true", "1"]


def test_the_metrics_table_is_the_union_of_metric_names(client, trio):
    first, second, third = trio
    response = compare(client, [first.pk, second.pk, third.pk])
    rows = {row.name: row.values for row in response.context["metric_rows"]}
    # In the order train_transformer declares them; blank where a run lacks one, — for null.
    assert list(rows) == ["final_loss", "in_context_gain", "n_checkpoints"]
    assert rows["final_loss"] == ["0.5", "1.25", ""]
    assert rows["in_context_gain"] == ["", "—", ""]
    assert rows["n_checkpoints"] == ["30", "", ""]


def test_step_series_are_embedded_one_entry_per_name_one_line_per_run(client, trio):
    first, second, third = trio
    response = compare(client, [first.pk, second.pk, third.pk])
    html = html_of(response)
    embedded = re.search(r'<script id="compare-series" type="application/json">(.*?)</script>', html).group(1)
    series = json.loads(embedded)
    assert series == [
        {
            "name": "loss",
            "lines": [
                {"run": first.pk, "label": f"Run {first.pk}", "points": [[0, 4.0], [10, 2.0]]},
                {"run": second.pk, "label": f"Run {second.pk}", "points": [[0, 4.1], [10, 3.0]]},
            ],
        },
        {"name": "accuracy", "lines": [{"run": first.pk, "label": f"Run {first.pk}", "points": [[10, 0.5]]}]},
    ]
    assert html.count('<figure class="chart" data-series-index=') == 2
    assert "plotly/plotly.min.js" in html and "js/run_compare.js" in html
    assert "<script>" not in html.replace(" ", "")  # CSP: no inline scripts


def test_runs_without_series_say_so_and_load_no_plotly(client, trio):
    _, _, third = trio
    other = ExperimentRunFactory(spec=third.spec, status=RunStatus.QUEUED)
    html = html_of(compare(client, [third.pk, other.pk]))
    assert "None of these runs reported a step series." in html and "plotly" not in html
    assert "These runs used the same params." in html


def test_ids_may_come_from_a_plain_form_and_anyone_may_compare(client, trio):
    """All runs are public (their pages and /api/runs/ need no login), so comparing them needs none either."""
    first, second, _ = trio
    response = client.get(reverse("run-compare"), {"ids": [first.pk, second.pk]})
    assert response.status_code == 200
    assert [column.run for column in response.context["columns"]] == [first, second]
    assert client.get(f"/runs/compare/?ids={first.pk},+{second.pk},").status_code == 200


@pytest.mark.parametrize(
    ("make_query", "words"),
    [
        (lambda runs: "", "Choose 2 to 6 runs to compare; got 0."),
        (lambda runs: f"ids={runs[0].pk}", "Choose 2 to 6 runs to compare; got 1."),
        (lambda runs: "ids=" + ",".join(str(runs[0].pk + n) for n in range(7)), "got 7"),
        (lambda runs: f"ids={runs[0].pk},{runs[1].pk},{runs[0].pk}", "Each run once:"),
        (lambda runs: f"ids={runs[0].pk},424242", "No run with id 424242."),
        (lambda runs: f"ids={runs[0].pk},x", "ids must be run numbers separated by commas; got &#x27;x&#x27;."),
        (lambda runs: f"ids={runs[0].pk},-3", "ids must be run numbers"),
        (lambda runs: f"ids={runs[0].pk},²", "ids must be run numbers"),
        (lambda runs: f"ids={runs[0].pk},{'9' * 30}", "ids must be run numbers"),
    ],
)
def test_bad_choices_are_a_400_page_saying_why(client, trio, make_query, words):
    response = client.get(f"/runs/compare/?{make_query(trio)}")
    assert response.status_code == 400
    html = html_of(response)
    assert "That did not work" in html and words in html
    assert 'href="/runs/"' in html  # back to the list


@pytest.mark.parametrize("query", ["ids=%00", "ids=1,2%00", "id%00s=1,2"])
def test_a_nul_in_the_query_is_a_400(client, query):
    response = client.get(f"/runs/compare/?{query}")
    assert response.status_code == 400 and "NUL" in html_of(response)


def test_names_and_values_are_escaped(client, trio):
    first, second, _ = trio
    spec = first.spec
    spec.title = f"Title {XSS}"
    spec.save()
    for run in (first, second):
        run.params = {"note": XSS if run is first else "plain", XSS: 1}
        run.metrics = {XSS: 1.0}
        run.series = {f"</script>{XSS}": [[1, 1.0]]}
        run.created_by = UserFactory(username=f"u{run.pk}")
        run.save()
    html = html_of(compare(client, [first.pk, second.pk]))
    assert "<script>alert" not in html and "</script><script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
