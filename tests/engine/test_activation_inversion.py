"""activation_inversion: decoders that read each position's token back from a slice of the residual stream, per
layer and position, beside a random model of the same configuration, with the top-10 guesses for a few inputs."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.engine.analysis.inversion import residual_streams, stream_reader
from experiments.engine.errors import InvalidParams
from experiments.engine.kinds import activation_inversion
from experiments.engine.kinds.activation_inversion import (
    FIGURE_POSITIONS,
    DimRange,
    Params,
    check_references,
    random_tokens,
)
from experiments.engine.models import NativeConfig, RunModelRef, build_native
from experiments.engine.registry import registry

TINY = {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_head": 8, "n_ctx": 12, "d_vocab": 10}
FAST = {"steps": 60, "batch_size": 8, "n_eval_sequences": 16, "n_examples": 2}


@pytest.fixture(scope="module")
def native_run(local_runs):
    params = {"model": {"source": "native", "config": TINY}, "layers": [0, 2], **FAST}
    return local_runs.run("activation_inversion", params, seed=5)


def test_each_layer_is_scored_for_the_model_and_a_random_one(native_run):
    _, result, ctx = native_run
    m = result.metrics
    for name in ("reconstruction_accuracy", "random_reconstruction_accuracy", "accuracy_L0", "accuracy_L2",
                 "random_accuracy_L2", "last_layer_accuracy", "min_layer_accuracy"):  # fmt: skip
        assert 0.0 <= m[name] <= 1.0, name
    assert m["reconstruction_accuracy"] == m["accuracy_L0"] and m["last_layer_accuracy"] == m["accuracy_L2"]
    assert m["chance_accuracy"] == pytest.approx(1 / 9)
    assert result.summary["hooks"] == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_post"]
    assert {"accuracy_by_position", "accuracy_by_layer", "top10_guesses", "top10_guesses_heatmap"} <= set(ctx.artifacts)
    assert result.headline == "accuracy_by_layer"
    assert f"{m['reconstruction_accuracy']:.1%} of held-out tokens" in result.findings[0]
    assert result.findings[-1].startswith("From a randomly initialised model")


def test_the_guesses_are_ten_tokens_per_position_with_falling_probabilities(native_run):
    ctx = native_run[2]
    guesses = json.loads((ctx.artifact_dir / ctx.artifacts["top10_guesses"].path).read_text())
    assert guesses["layer"] == 0 and len(guesses["examples"]) == 2
    for example in guesses["examples"]:
        assert len(example["truth"]) == TINY["n_ctx"] - 1  # BOS is left out
        assert all(len(row) == 10 and len(set(row)) == 10 for row in example["guesses"])
        for probabilities in example["probabilities"]:
            assert (
                probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.001
            )  # rounded to 4 places


def test_a_decoder_reads_the_embedding_back_far_above_chance(native_run):
    assert native_run[1].metrics["accuracy_L0"] > 0.5  # 60 steps on a 10-token vocabulary: chance is 0.11


def test_it_can_train_its_own_model_first(local_runs):
    training = {"model": TINY, "steps": 20, "batch_size": 4, "warmup_steps": 2, "n_checkpoints": 1}
    params = {"train": training, "layers": [1], "dims": "second_half", "decoder": "mlp", "hidden": 16, **FAST}
    _, result, ctx = local_runs.run("activation_inversion", params, seed=6)
    assert "base-checkpoint-20" in ctx.artifacts and "loss" in ctx.series
    assert result.summary["dims"] == [8, 16] and result.summary["decoder"] == "mlp"
    assert set(result.metrics) >= {"accuracy_L1", "random_accuracy_L1"}


def test_the_lean_reader_gives_the_bridges_residual_streams():
    config = NativeConfig(**TINY)
    model = build_native(config, seed=1)
    tokens = random_tokens(3, 12, 10, 0, torch.Generator().manual_seed(0))
    hooked = residual_streams(model, tokens, [0, 1, 2], slice(4, 12))
    lean = stream_reader(model, config, [0, 1, 2], slice(4, 12))(tokens)
    for layer in (0, 1, 2):
        torch.testing.assert_close(lean[layer], hooked[layer], atol=1e-5, rtol=1e-5)


def test_random_tokens_start_with_bos_and_never_repeat_it():
    tokens = random_tokens(50, 20, 6, 0, torch.Generator().manual_seed(0))
    assert (tokens[:, 0] == 0).all() and (tokens[:, 1:] > 0).all() and tokens.max() == 5


def test_a_layer_beyond_the_model_is_refused_naming_it():
    params = Params(model={"source": "native", "config": TINY}, layers=[0, 3, 2])
    problems = check_references(params, runs=None)
    assert list(problems) == ["layers.1"] and "Layer 3 is beyond the model: it has 2 layers" in problems["layers.1"]
    trained_here = Params(train={"model": {"n_layers": 1}}, layers=[2])
    assert list(check_references(trained_here, runs=None)) == ["layers.0"]


def test_dimensions_and_length_beyond_the_model_are_refused():
    params = Params(model={"source": "native", "config": TINY}, layers=[0], dims=DimRange(start=4, stop=40), length=99)
    assert set(check_references(params, runs=None)) == {"dims.stop", "length"}


def test_a_checkpoint_that_does_not_exist_is_refused(local_runs, native_run):
    params = Params(model=RunModelRef(run=native_run[0], artifact="checkpoint-7"), layers=[0])
    assert list(check_references(params, local_runs)) == ["model"]


@pytest.mark.parametrize(
    "params",
    [
        {"model": {"source": "native"}, "train": {}},
        {"layers": [0, 0]},
        {"layers": []},
        {"dims": {"start": 5, "stop": 5}},
        {"dims": "third_half"},
        {"steps": 10**6},
    ],
)
def test_bad_params_are_refused(params):
    with pytest.raises(InvalidParams):
        registry.get(activation_inversion.KEY).parse_params(params)


def test_the_guesses_figure_draws_the_first_positions_and_the_json_keeps_them_all(local_runs):
    long = {"model": {"source": "native", "config": {**TINY, "n_ctx": 40}}, "layers": [0], **FAST, "steps": 10}
    _, _, ctx = local_runs.run("activation_inversion", long, seed=5)
    table = json.loads((ctx.artifact_dir / ctx.artifacts["top10_guesses"].path).read_text())
    figure = json.loads((ctx.artifact_dir / ctx.artifacts["top10_guesses_heatmap"].path).read_text())
    assert len(table["examples"][0]["positions"]) > FIGURE_POSITIONS
    assert [len(trace["x"]) for trace in figure["data"]] == [FIGURE_POSITIONS] * len(table["examples"])
    assert not [entry for entry in ctx.log_entries if entry["level"] == "warning"]  # no torch warnings either
