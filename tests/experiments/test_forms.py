"""experiments/forms.py: the add-an-experiment form, its params as one JSON object and where messages land."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError

from experiments.engine.registry import registry
from experiments.forms import SpecForm

SMOKE = registry.get("smoke")


def data(**overrides) -> dict[str, str]:
    return {"kind": "smoke", "title": "t", "seed": "0", "params": '{"steps": 3}', **overrides}


def test_the_params_start_as_the_kinds_defaults_in_json():
    form = SpecForm(kind=registry.get("head_detection"), allow_criterion=False)
    start = json.loads(form["params"].value())
    assert start["model"]["source"] == "native" and start["model"]["config"]["n_layers"] == 2
    assert start["data"]["half_length"] == 31  # the kind's default, not RepeatedRandomTokens' own 32
    assert 'name="params"' in str(form["params"]) and "<textarea" in str(form["params"])


def test_the_params_json_is_parsed_and_an_empty_one_means_every_default():
    form = SpecForm(data(), kind=SMOKE, allow_criterion=False)
    assert form.is_valid(), form.errors
    assert form.params_value() == {"steps": 3}
    empty = SpecForm(data(params="  "), kind=SMOKE, allow_criterion=False)
    assert empty.is_valid() and empty.params_value() == {}

    bad = SpecForm(data(params='{"steps": 3'), kind=SMOKE, allow_criterion=False)
    assert not bad.is_valid()
    assert bad.errors["params"][0].startswith("Not valid JSON")
    assert bad.param_errors == [("", bad.errors["params"][0])]  # about the whole object: no path


def test_service_errors_keep_the_dotted_path_of_the_param_they_name():
    form = SpecForm(data(), kind=SMOKE, allow_criterion=True)
    assert form.is_valid(), form.errors
    form.add_service_errors(
        ValidationError(
            {
                "params.training.model.n_layers": ["Input should be less than or equal to 12"],
                "params.depths.0": ["too deep"],
                "params": ["Must be a JSON object."],
                "criterion.metric": ["no such metric"],
                "kind": ["no"],
            }
        )
    )
    assert form.param_errors == [
        ("training.model.n_layers", "Input should be less than or equal to 12"),
        ("depths.0", "too deep"),
        ("", "Must be a JSON object."),
    ]
    assert form.errors["params"][0] == "training.model.n_layers: Input should be less than or equal to 12"
    assert form.errors["criterion.metric"] == ["no such metric"]
    assert form.non_field_errors() == ["kind: no"]
