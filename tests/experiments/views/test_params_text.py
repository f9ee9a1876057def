"""experiments/views/params_text.py: a spec's params as the short list its card shows, only what differs
from the kind's defaults."""

from __future__ import annotations

import copy

from experiments.engine.params_schema import default_params
from experiments.engine.registry import registry
from experiments.views.params_text import params_diff, params_text, value_text


def test_params_equal_to_the_defaults_show_nothing():
    for kind in registry:
        assert params_text(default_params(kind), kind) == [], kind.key
    assert params_text({}, registry.get("smoke")) == []  # left out means default


def test_nested_changes_are_named_by_their_path_and_lists_are_written_out():
    kind = registry.get("attention_depth_comparison")
    params = copy.deepcopy(default_params(kind))
    params["depths"] = [1, 2, 4]
    params["training"]["steps"] = 1000
    params["training"]["lr"] = 0.001
    params["training"]["model"]["n_heads"] = 2
    params["runs"] = None  # the default
    assert params_text(params, kind) == [
        "depths = 1, 2, 4",
        "training.model.n_heads = 2",
        "training.steps = 1000",
        "training.lr = 0.001",
    ]


def test_another_alternative_names_the_choice_and_what_differs_from_its_own_defaults():
    kind = registry.get("train_transformer")
    params = copy.deepcopy(default_params(kind))
    params["data"] = {"source": "text_corpus", "dataset": 3, "tokenizer": "char", "vocab_size": 1024}
    # vocab_size is text_corpus's own default, so it is not listed.
    assert params_text(params, kind) == ["data.source = text_corpus", "data.dataset = 3", "data.tokenizer = char"]

    head_detection = registry.get("head_detection")
    params = copy.deepcopy(default_params(head_detection))
    params["model"] = {"source": "run", "run": 12, "artifact": "checkpoint-2000"}
    assert params_diff(params, head_detection) == [
        ("model.source", "run"),
        ("model.run", 12),
        ("model.artifact", "checkpoint-2000"),
    ]
    params["model"] = {"source": "native", "config": {**params_default_config(head_detection), "n_layers": 1}}
    assert params_text(params, head_detection) == ["model.config.n_layers = 1"]  # same alternative: no source line


def params_default_config(kind) -> dict:
    return default_params(kind)["model"]["config"]


def test_a_param_set_away_from_a_default_of_none_and_back():
    smoke = registry.get("smoke")
    assert params_text({"steps": 3, "delay_seconds": 0.5, "fail_at_step": 2}, smoke) == [
        "steps = 3",
        "delay_seconds = 0.5",
        "fail_at_step = 2",
    ]
    adc = registry.get("attention_depth_comparison")
    assert params_text({"runs": [4, 5]}, adc) == ["runs = 4, 5"]
    tt = registry.get("train_transformer")
    assert params_text({"model": {**default_params(tt)["model"], "d_mlp": 128, "attn_only": False}}, tt) == [
        "model.d_mlp = 128",
        "model.attn_only = false",
    ]


def test_without_its_kind_every_param_that_is_set_is_listed():
    assert params_text({"steps": 3, "fail_at_step": None, "data": {"source": "x", "sizes": [1, 2]}}, None) == [
        "steps = 3",
        "data.source = x",
        "data.sizes = 1, 2",
    ]


def test_values_read_as_a_researcher_writes_them():
    assert value_text(None) == "none"
    assert value_text(True) == "true"
    assert value_text(60.0) == "60"
    assert value_text(0.003) == "0.003"
    assert value_text(1e-5) == "1e-05"
    assert value_text([]) == "(empty)"
    assert value_text(["ckpt-10", "ckpt-20"]) == "ckpt-10, ckpt-20"
    assert value_text([{"a": 1}]) == '[{"a": 1}]'
    long = value_text(list(range(100)))
    assert len(long) == 60 and long.endswith("…") and long.startswith("0, 1, 2")
