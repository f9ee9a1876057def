"""Training params: a partial `model` override changes only the fields it names."""

from __future__ import annotations

from experiments.engine.registry import registry
from experiments.engine.training import SMALL_ATTN_ONLY

ONE_LAYER = SMALL_ATTN_ONLY.model_dump() | {"n_layers": 1}


def test_a_partial_model_override_keeps_the_default_architecture():
    kind = registry.get("train_transformer")
    params = kind.normalized_params(kind.parse_params({"model": {"n_layers": 1}}))
    assert params["model"] == ONE_LAYER  # not NativeConfig's general defaults (256 wide, 1024 tokens)


def test_a_partial_model_override_inside_the_depth_comparison_keeps_the_default_architecture():
    kind = registry.get("attention_depth_comparison")
    params = kind.normalized_params(kind.parse_params({"training": {"model": {"n_layers": 1}, "steps": 10}}))
    assert params["training"]["model"] == ONE_LAYER and params["training"]["steps"] == 10


def test_a_full_model_and_no_model_are_taken_as_they_are():
    kind = registry.get("train_transformer")
    wide = SMALL_ATTN_ONLY.model_dump() | {"d_model": 128, "d_head": 32, "n_ctx": 128}
    assert kind.parse_params({"model": wide}).model.model_dump() == wide
    assert kind.parse_params({}).model == SMALL_ATTN_ONLY


def test_the_schema_shows_the_default_model_and_says_left_out_fields_keep_it():
    model = registry.get("train_transformer").params_schema()["properties"]["model"]
    assert model["default"] == SMALL_ATTN_ONLY.model_dump(mode="json")
    assert "left out keep this default" in model["description"]
