"""experiments/engine/params_schema.py: reading a params model's JSON Schema, whatever its shapes."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import Field

from experiments.engine.errors import InvalidParams
from experiments.engine.params import KindParams
from experiments.engine.params_schema import (
    default_params,
    example,
    params_schema_of,
    resolve,
    split_nullable,
    union_branches,
)
from experiments.engine.registry import Kind, KindResult, registry


class Inner(KindParams):
    width: int = Field(4, ge=1, le=64)


class Native(KindParams):
    source: Literal["native"] = "native"
    inner: Inner = Inner(width=8)


class FromRun(KindParams):
    source: Literal["run"] = "run"
    run: int = Field(ge=1)


class RichParams(KindParams):
    """Every shape of param the form builder knows."""

    layers: int = Field(2, ge=1, le=12, description="How many layers.")
    norm: Literal["LN", "RMS"] | None = "LN"
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


def test_refs_nullables_and_tagged_unions_are_read_as_the_form_builder_reads_them():
    schema = params_schema_of(RICH)
    assert params_schema_of(RICH) is schema  # built once per params model
    defs = schema["$defs"]
    props = schema["properties"]
    inner = resolve(props["inner"], defs)
    assert inner["properties"]["width"]["maximum"] == 64 and inner["default"] == {"width": 4}  # outer keys kept
    norm, nullable = split_nullable(props["norm"], defs)
    assert nullable and norm["enum"] == ["LN", "RMS"] and norm["default"] == "LN"
    assert split_nullable(props["layers"], defs) == (props["layers"], False)
    tag, branches = union_branches(props["model"], defs)
    assert tag == "source" and list(branches) == ["native", "run"]
    assert union_branches(props["inner"], defs) is None


def test_the_example_is_made_of_defaults_and_leaves_out_what_has_none():
    schema = params_schema_of(RICH)
    # label (a required name) has no default; model (a required union) starts from its first alternative.
    assert example(schema, schema["$defs"]) == {
        "layers": 2,
        "norm": "LN",
        "inner": {"width": 4},
        "widths": [1, 2],
        "model": {"source": "native", "inner": {"width": 8}},
    }
    assert default_params(RICH) == example(schema, schema["$defs"])  # the kind refuses it: no label yet


def test_every_registered_kind_has_default_params_it_accepts_but_for_what_only_a_person_can_name():
    for kind in registry:
        if kind.key == "checkpoint_pca":  # which run's checkpoints: no default can say
            with pytest.raises(InvalidParams) as refused:
                kind.parse_params(default_params(kind))
            assert list(refused.value.errors) == ["run"]
        else:
            kind.parse_params(default_params(kind))
    assert default_params(registry.get("head_detection"))["model"]["source"] == "native"
    assert default_params(registry.get("smoke")) == {
        "steps": 10,
        "delay_seconds": 0.0,
        "fail_at_step": None,
        "exit_at_step": None,
        "parts": None,
        "time_limit_seconds": None,
    }
