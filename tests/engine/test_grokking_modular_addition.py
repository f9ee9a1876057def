"""grokking_modular_addition: presets, bounds, the Fourier progress measures on constructed inputs, and a short run.

The research claim itself (the model groks, its embedding becomes sparse in the Fourier basis, the excluded loss
rises during circuit formation) is checked on untuned seeds in test_grokking_science.py.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from pydantic import ValidationError

from experiments.engine.analysis.fourier import (
    fourier_basis,
    frequency_energy,
    key_frequencies,
    restricted_and_excluded_loss,
    top_share,
)
from experiments.engine.kinds.grokking_modular_addition import PRESETS, Params
from experiments.engine.modular_addition import ModularShape, OneLayerTransformer, modular_addition_data

TINY = {"p": 23, "d_model": 32, "n_heads": 4, "d_mlp": 64, "lr": 3e-3, "steps": 120, "n_checkpoints": 5}


def test_the_default_is_the_cpu_preset_and_a_preset_fills_only_what_the_spec_leaves_out():
    assert (
        Params().model_dump(exclude={"preset", "n_series_points", "n_checkpoints", "n_top_frequencies"})
        == (PRESETS["cpu"])
    )
    nanda = Params.model_validate({"preset": "nanda2023", "steps": 20_000})
    assert (nanda.p, nanda.train_fraction, nanda.d_model, nanda.n_heads, nanda.d_mlp) == (113, 0.3, 128, 4, 512)
    assert (nanda.lr, nanda.weight_decay, nanda.beta1, nanda.beta2, nanda.steps) == (1e-3, 1.0, 0.9, 0.98, 20_000)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"p": 57}, "p"),  # 3 x 19
        ({"p": 1000}, "p"),
        ({"p": 3, "train_fraction": 0.99}, "train_fraction"),  # all 9 pairs would train: no test set
        ({"train_fraction": 1.0}, "train_fraction"),
        ({"train_fraction": 0.0001}, "train_fraction"),  # no training pair
        ({"d_model": 128, "n_heads": 3}, "n_heads"),
        ({"d_mlp": 10**6}, "d_mlp"),
        ({"steps": 10**7}, "steps"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"preset": "gpu"}, "preset"),
        ({"lr": "0.001"}, "lr"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(ValidationError) as caught:
        Params.model_validate(params)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_the_fourier_basis_is_orthonormal():
    basis = fourier_basis(11)
    assert torch.allclose(basis @ basis.T, torch.eye(11, dtype=torch.float64), atol=1e-12)


def test_an_embedding_of_two_frequencies_has_them_as_its_key_frequencies():
    p, x = 31, torch.arange(31, dtype=torch.float64)
    noise = 0.01 * torch.randn(p, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    embedding = noise.clone()
    embedding[:, 0] += torch.cos(2 * math.pi * 4 * x / p)
    embedding[:, 1] += 2 * torch.sin(2 * math.pi * 9 * x / p)
    energy, constant = frequency_energy(embedding)
    assert key_frequencies(energy) == [9, 4]
    assert top_share(energy, constant, 2) > 0.99
    assert top_share(*frequency_energy(noise), 2) < 0.3


def test_logits_of_the_key_frequencies_keep_their_loss_when_restricted_and_lose_it_when_excluded():
    p = 13
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    c = torch.arange(p)
    # Nanda et al.'s algorithm: logit(c) = sum_k cos(w_k (a + b - c)), peaked at c = a + b mod p.
    logits = sum(10 * torch.cos(2 * math.pi * k * ((a + b)[:, None] - c[None, :]) / p) for k in (2, 5))
    labels, train = (a + b) % p, torch.arange(0, p * p, 2)
    restricted, excluded = restricted_and_excluded_loss(logits, labels, train, [2, 5])
    assert restricted == pytest.approx(float(torch.nn.functional.cross_entropy(logits.double(), labels)), rel=1e-5)
    assert excluded == pytest.approx(math.log(p), rel=1e-6)  # nothing left: uniform over the answers


def test_the_split_is_seeded_and_covers_every_pair_once():
    data = modular_addition_data(7, 0.3, seed=5)
    assert sorted(torch.cat([data.train, data.test]).tolist()) == list(range(49))
    assert len(data.train) == round(0.3 * 49)
    assert torch.equal(data.train, modular_addition_data(7, 0.3, seed=5).train)
    assert torch.equal(data.labels, (data.tokens[:, 0] + data.tokens[:, 1]) % 7)


def test_the_last_position_forward_matches_a_full_causal_forward():
    model = OneLayerTransformer(ModularShape(p=7, d_model=16, n_heads=2, d_mlp=32))
    model.reset_parameters(torch.Generator().manual_seed(0))
    tokens = modular_addition_data(7, 0.5, seed=0).tokens
    x = model.W_E[tokens] + model.W_pos  # every position's query, with a causal mask, the long way
    q, k, v = (torch.einsum("bpd,hde->bhpe", x, w) for w in (model.W_Q, model.W_K, model.W_V))
    scores = torch.einsum("bhqe,bhke->bhqk", q, k) / model.shape.d_head**0.5
    scores = scores.masked_fill(torch.triu(torch.ones(3, 3, dtype=torch.bool), 1), float("-inf"))
    resid = x + torch.einsum("bhqk,bhke,hed->bqd", scores.softmax(-1), v, model.W_O)
    resid = resid + torch.relu(resid @ model.W_in + model.b_in) @ model.W_out + model.b_out
    assert torch.allclose(model(tokens), (resid @ model.W_U)[:, -1], atol=1e-5)


def test_a_short_run_logs_its_series_checkpoints_measures_and_findings(local_runs):
    _, result, ctx = local_runs.run("grokking_modular_addition", TINY, seed=3)
    assert result.headline == "curves"
    assert {"curves", "fourier_norms", "progress_measures"} <= set(ctx.artifacts)
    checkpoints = [name for name in ctx.artifacts if name.startswith("checkpoint-")]
    assert checkpoints[-1] == "checkpoint-120" and len(checkpoints) == 5
    assert ctx.artifacts["checkpoint-120"].meta == {"step": 120, "p": 23}
    for name in ("train_loss", "test_accuracy", "weight_norm", "restricted_loss", "excluded_loss"):
        assert ctx.series[name][-1][0] == 120
    assert len(ctx.series["restricted_loss"]) == 6  # initialisation and the 5 checkpoints
    assert result.metrics["train_accuracy"] == 1.0  # 159 pairs are memorised in 120 steps at lr 3e-3
    assert result.metrics["step_train_99"] <= 120
    assert 0 < result.metrics["initial_top_frequencies_norm_share"] < 1
    assert result.findings[0].startswith("It memorised but did not generalise")


def test_the_phases_are_shaded_within_the_log_step_axis(local_runs):
    # Plotly.js places a shape on a log axis by its data value but an annotation by its log10: a label at x = step
    # would stretch the axis to 10^step, a rectangle at log10(step) would sit decades off.
    _, result, ctx = local_runs.run("grokking_modular_addition", TINY, seed=3)
    memorised = result.metrics["memorisation_end_step"]
    for name in ("curves", "progress_measures"):
        layout = json.loads((ctx.artifact_dir / ctx.artifacts[name].path).read_text())["layout"]
        assert layout["shapes"] and all(shape["x1"] == memorised for shape in layout["shapes"]), name
        labels = [a for a in layout["annotations"] if a["text"] == "memorisation"]
        assert len(labels) == 1 and labels[0]["x"] == pytest.approx(math.log10(layout["shapes"][0]["x0"])), name
