"""model_diff: per-token losses of several models on the same tokens, their difference by token class, the contexts
that changed most, and the checkpoint stretch that changed most."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from experiments.engine.analysis.token_losses import (
    TokenClasses,
    frequency_classes,
    repeated_classes,
    top_contexts,
)
from experiments.engine.errors import EngineError, InvalidParams
from experiments.engine.kinds import model_diff
from experiments.engine.models import NativeModelRef, RunModelRef
from experiments.engine.registry import registry
from experiments.engine.training import TrainingParams

TINY = {"n_layers": 1, "n_heads": 2, "d_model": 16, "d_head": 8, "n_ctx": 16, "d_vocab": 12}
SHORT_TRAINING = {"model": TINY, "steps": 40, "batch_size": 8, "warmup_steps": 5, "n_checkpoints": 4}
DATA = {"source": "repeated_random_tokens", "n_sequences": 6, "half_length": 7}


@pytest.fixture(scope="module")
def training_run(local_runs):
    return local_runs.run("train_transformer", SHORT_TRAINING, seed=3)[0]


@pytest.fixture(scope="module")
def series(local_runs, training_run):
    return local_runs.run("model_diff", {"checkpoints_of": training_run, "data": DATA, "top_k": 10, "window": 2})


def test_a_checkpoint_series_is_compared_step_by_step(local_runs, training_run, series):
    _, result, ctx = series
    steps = [step for step, _ in local_runs.checkpoints(training_run)]
    assert result.summary["steps"] == steps
    assert result.metrics["n_models"] == len(steps) >= 3
    assert len(result.summary["consecutive_changes"]) == len(steps) - 1
    biggest = int(np.argmax(result.summary["consecutive_changes"]))
    assert result.metrics["largest_change_step"] == steps[biggest + 1]
    assert result.summary["largest_change"]["from"] == f"step {steps[biggest]}"
    assert {"top_contexts", "loss_difference_histogram", "class_losses", "largest_change_contexts"} <= set(
        ctx.artifacts
    )
    assert result.headline == "class_losses"
    assert set(result.summary["classes"]) == {"first_half", "repeat_start", "second_half"}
    largest = result.summary["largest_change"]
    assert f"from {largest['from']} to {largest['to']}" in result.findings[-1]
    assert any("of the 10 tokens whose loss fell most" in line.lower() for line in result.findings)


def test_listed_contexts_hold_the_token_its_window_and_both_losses(series):
    ctx = series[2]

    table = json.loads((ctx.artifact_dir / ctx.artifacts["top_contexts"].path).read_text())
    drops = table["drops"]
    assert len(drops) == 10
    assert [row["difference"] for row in drops] == sorted(row["difference"] for row in drops)
    for row in drops:
        assert row["window"][row["position"] - row["window_start"]] == row["token"]
        assert len(row["window"]) <= 5
        assert row["difference"] == pytest.approx(row["loss_after"] - row["loss_before"], abs=2e-4)
        expected = "first_half" if row["position"] <= 7 else "repeat_start" if row["position"] == 8 else "second_half"
        assert row["class"] == expected


def test_the_difference_is_the_last_model_minus_the_first(local_runs, training_run, series):
    _, result, _ = series
    steps = [step for step, _ in local_runs.checkpoints(training_run)]
    ends = [RunModelRef(run=training_run, artifact=f"checkpoint-{s}").model_dump() for s in (steps[0], steps[-1])]
    _, pair, ctx = local_runs.run("model_diff", {"models": ends, "data": DATA, "top_k": 10, "window": 2})
    assert pair.metrics["mean_loss_difference"] == pytest.approx(result.metrics["mean_loss_difference"], abs=1e-5)
    assert pair.metrics["mean_loss_difference"] == pytest.approx(
        pair.metrics["last_model_loss"] - pair.metrics["first_model_loss"], abs=1e-5
    )
    assert "largest_change_step" not in pair.metrics  # models, not a series
    assert pair.headline == "loss_difference_histogram" and "class_losses" not in ctx.artifacts


def test_it_can_train_its_own_model_and_diff_the_checkpoints(local_runs):
    params = {"train": SHORT_TRAINING, "data": DATA, "top_k": 5}
    _, result, ctx = local_runs.run("model_diff", params, seed=4)
    assert any(name.startswith("base-checkpoint-") for name in ctx.artifacts)
    assert result.metrics["n_models"] == 4
    assert "loss" in ctx.series  # the training loop's series


@pytest.mark.parametrize("source", ["induction_training", "markov_text"])
def test_generated_data_with_a_copy_is_split_into_copied_and_other_tokens(local_runs, training_run, source):
    refs = [
        RunModelRef(run=training_run, artifact=name).model_dump() for _, name in local_runs.checkpoints(training_run)
    ]
    data = {"source": source, "min_segment": 3, "max_segment": 5}
    _, result, _ = local_runs.run("model_diff", {"models": refs[:2], "data": data, "n_sequences": 8, "top_k": 5})
    assert set(result.summary["classes"]) == {"copied", "not_copied"}
    assert 0 <= result.metrics["top_drop_copied_share"] <= 1
    assert "copied_loss_first" in result.metrics and "top_drop_second_half_share" not in result.metrics


def test_with_no_models_given_it_trains_the_default_model():
    params = registry.get("model_diff").parse_params({})
    assert params.training == TrainingParams() and params.models is None and params.checkpoints_of is None
    assert registry.get("model_diff").parse_params({"models": [{"source": "native"}] * 2}).training is None


def test_models_with_different_vocabularies_are_refused_naming_both():
    small = NativeModelRef(config={**TINY, "d_vocab": 12})
    large = NativeModelRef(config={**TINY, "d_vocab": 20})
    params = model_diff.Params(models=[small, small, large], data=DATA)
    problems = model_diff.check_references(params, runs=None)
    assert list(problems) == ["models.2"]
    assert "models.2" in problems["models.2"] and "models.0" in problems["models.2"]
    assert "20" in problems["models.2"] and "12" in problems["models.2"]


def test_the_run_refuses_models_with_different_vocabularies_too(local_runs):
    refs = [{"source": "native", "config": TINY}, {"source": "native", "config": {**TINY, "d_vocab": 20}}]
    with pytest.raises(EngineError, match="vocabulary"):
        local_runs.run("model_diff", {"models": refs, "data": DATA})


def test_a_checkpoint_that_does_not_exist_is_named(local_runs, training_run):
    ref = RunModelRef(run=training_run, artifact="checkpoint-999999")
    params = model_diff.Params(models=[ref, ref], data=DATA)
    problems = model_diff.check_references(params, local_runs)
    assert set(problems) == {"models.0", "models.1"} and "checkpoint-999999" in problems["models.0"]
    selected = model_diff.Params(checkpoints_of=training_run, checkpoints=["checkpoint-1", "checkpoint-2"])
    assert list(model_diff.check_references(selected, local_runs)) == ["checkpoints"]


@pytest.mark.parametrize(
    "params",
    [
        {"models": [{"source": "native"}], "data": DATA},
        {"train": {}, "checkpoints_of": 1},
        {"models": [{"source": "native"}] * 2, "checkpoints": ["a", "b"]},
        {"train": {"model": {"n_ctx": 16}}},  # the default repeated tokens are 63 long
        {"train": {}, "top_k": 0},
    ],
)
def test_bad_params_are_refused(params):
    with pytest.raises(InvalidParams):
        registry.get("model_diff").parse_params(params)


def test_repeated_classes_separate_the_unpredictable_first_repeat():
    classes = repeated_classes(2, 3)  # BOS a b c a b c: losses predict a b c a b c
    assert [classes.names[i] for i in classes.labels[0]] == [
        "first_half", "first_half", "first_half", "repeat_start", "second_half", "second_half",
    ]  # fmt: skip


def test_frequency_classes_cut_the_text_into_terciles():
    corpus = np.array([1] * 60 + [2] * 30 + [3] * 6 + [4] * 4)
    tokens = torch.tensor([[0, 1, 2, 3, 4]])
    classes = frequency_classes(tokens, corpus)
    assert [classes.names[i] for i in classes.labels[0]] == ["frequent", "middle", "rare", "rare"]


def test_top_contexts_rank_by_drop_or_rise():
    tokens = torch.tensor([[0, 5, 6, 7]])
    before = torch.tensor([[1.0, 2.0, 3.0]])
    after = torch.tensor([[1.5, 0.0, 3.0]])
    classes = TokenClasses(("a",), torch.zeros(1, 3, dtype=torch.long), "")
    _, drops = top_contexts(tokens, before, after, classes, k=1, window=1, drops=True)
    assert drops[0]["token"] == 6 and drops[0]["window"] == [5, 6, 7] and drops[0]["difference"] == -2.0
    _, rises = top_contexts(
        tokens, before, after, classes, k=1, window=0, drops=False, decode=lambda ids: f"<{ids[0]}>"
    )
    assert rises[0]["token"] == 5 and rises[0]["text"] == "<5>" and rises[0]["window_text"] == ["<5>"]
