"""experiments/forms.py: the add-an-experiment form built from a kind's params model, whatever its shapes."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field

from experiments.engine.params import KindParams
from experiments.engine.registry import Kind, KindResult
from experiments.forms import SpecForm


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
