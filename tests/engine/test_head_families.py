"""The weight-based head families of head_detection: OV copying (Elhage et al. 2021) and successor heads (Gould et al.
2023), on constructed circuits with known answers and through the kind on a native model.

Whether trained induction heads are OV-copying heads is a research claim, checked on untuned seeds in
tests/engine/test_induction_science.py."""

from __future__ import annotations

import pytest
import torch

from experiments.engine.analysis.ov_circuits import (
    OV_THRESHOLDS,
    eigenvalue_positivity,
    ordinal_tokens,
    ov_copying_scores,
    successor_score,
)
from experiments.engine.models import NativeConfig, build_native

VOCAB, D_MODEL, D_HEAD = 50, 32, 8


@pytest.fixture
def circuit_parts():
    generator = torch.Generator().manual_seed(0)
    embed = torch.randn(VOCAB, D_MODEL, generator=generator)
    w_v = torch.randn(D_MODEL, D_HEAD, generator=generator)
    return embed, w_v, generator


def test_a_head_that_writes_back_what_it_reads_scores_one_and_its_negation_minus_one(circuit_parts):
    embed, w_v, _ = circuit_parts
    readout = embed.T  # tied unembedding: E W_V W_V^T E^T is positive semi-definite
    assert eigenvalue_positivity(w_v, w_v.T, embed, readout).item() == pytest.approx(1.0, abs=1e-5)
    assert eigenvalue_positivity(w_v, -w_v.T, embed, readout).item() == pytest.approx(-1.0, abs=1e-5)


def test_random_ov_circuits_score_near_zero(circuit_parts):
    embed, _, generator = circuit_parts
    w_v = torch.randn(500, D_MODEL, D_HEAD, generator=generator)
    w_o = torch.randn(500, D_HEAD, D_MODEL, generator=generator)
    scores = eigenvalue_positivity(w_v, w_o, embed, embed.T)
    assert abs(scores.mean().item()) < 0.05
    assert (scores.abs() < OV_THRESHOLDS["ov_copying"]).float().mean().item() > 0.99


def test_the_small_matrix_gives_the_full_circuits_eigenvalue_positivity(circuit_parts):
    embed, w_v, generator = circuit_parts
    w_o = torch.randn(D_HEAD, D_MODEL, generator=generator) + 0.3 * w_v.T
    readout = torch.randn(D_MODEL, VOCAB, generator=generator) + 0.5 * embed.T
    full = torch.linalg.eigvals((embed @ w_v @ w_o @ readout).double())  # [vocab]: all but d_head of them ~0
    expected = (full.sum().real / full.abs().sum()).item()
    assert eigenvalue_positivity(w_v, w_o, embed, readout).item() == pytest.approx(expected, abs=1e-6)


def test_a_native_models_scores_fold_in_its_norms_and_match_the_full_vocabulary_circuit():
    torch.manual_seed(0)
    model = build_native(NativeConfig(n_layers=2, n_heads=2, d_model=16, d_head=8, n_ctx=8, d_vocab=24), seed=3)
    with torch.no_grad():  # norm weights other than ones, so folding them matters
        for block in model.blocks:
            next(p for n, p in block.ln1.named_parameters() if n.endswith("weight")).uniform_(0.2, 2.0)
        next(p for n, p in model.ln_final.named_parameters() if n.endswith("weight")).uniform_(0.2, 2.0)
    scores = ov_copying_scores(model)
    assert scores.shape == (2, 2)
    w_e = model.W_E.detach() - model.W_E.detach().mean(dim=-1, keepdim=True)  # LayerNorm centres first
    final_weight = next(p for n, p in model.ln_final.named_parameters() if n.endswith("weight")).detach()
    for layer, block in enumerate(model.blocks):
        ln1 = next(p for n, p in block.ln1.named_parameters() if n.endswith("weight")).detach()
        for head in range(2):
            full = (w_e * ln1) @ model.W_V[layer, head] @ model.W_O[layer, head] @ (model.W_U * final_weight[:, None])
            eigenvalues = torch.linalg.eigvals(full.detach().double())
            expected = (eigenvalues.sum().real / eigenvalues.abs().sum()).item()
            assert scores[layer, head].item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_untrained_models_heads_are_neither_copying_nor_suppressing(seed):
    from experiments.engine.training import SMALL_ATTN_ONLY

    scores = ov_copying_scores(build_native(SMALL_ATTN_ONLY, seed=seed))
    assert scores.shape == (2, 4)
    assert scores.abs().max().item() < 0.4  # 0.23 at most on these seeds; trained induction heads score >= 0.88


def test_a_head_that_maps_each_ordinal_to_the_next_scores_one_and_a_copying_head_zero():
    n = 6  # one sequence of 6 tokens, one-hot embeddings; the last has no successor
    successor = [1, 2, 3, 4, 5, -1]
    shift = torch.roll(torch.eye(n), shifts=1, dims=1)  # row i -> column i+1
    eye = torch.eye(n)
    assert successor_score(eye, shift, eye, eye, successor).item() == 1.0
    assert successor_score(eye, eye, eye, eye, successor).item() == 0.0
    # Two heads at once, as the kind scores a layer's heads together.
    both = successor_score(torch.stack([eye, eye]), torch.stack([shift, eye]), eye, eye, successor)
    assert both.tolist() == [1.0, 0.0]


def word_level_tokenizer(words: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(words)} | {"<unk>": len(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>")


def test_ordinal_tokens_are_the_one_token_members_with_their_successors():
    days = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
    tokenizer = word_level_tokenizer(["the", "1", "2", "3", "5", *days])
    found = ordinal_tokens(tokenizer)
    assert found[" "].ids == []  # a word-level tokenizer drops the space: " 1" decodes as "1", not one token
    numbers = found[""]
    assert numbers.sequences == ["numerals (no leading space)", "days (no leading space)"]
    assert numbers.ids[:4] == [1, 2, 3, 4]  # "4" is not a token: "3" has no successor, "5" has none either
    assert numbers.successor[:4] == [1, 2, -1, -1]
    assert numbers.successor[4:] == [5, 6, 7, 8, 9, 10, -1]
    assert numbers.n_pairs == 2 + 6


def test_head_detection_on_a_native_model_reports_successor_heads_as_not_applicable(local_runs):
    model = {"source": "native", "config": {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_head": 8, "n_ctx": 24}}
    _, result, ctx = local_runs.run("head_detection", {"model": model, "data": {"n_sequences": 4, "half_length": 10}})
    assert "max_successor_score" not in result.metrics and "n_successor_heads" not in result.metrics
    assert -1.0 <= result.metrics["min_ov_copying_score"] <= result.metrics["max_ov_copying_score"] <= 1.0
    assert result.summary["ov_families"]["successor"]["applicable"] is False
    assert any(line.startswith("Successor heads: not applicable") for line in result.findings)
    rows = result.summary["heads"]
    assert len(rows) == 4 and all("ov_copying" in row and "successor" not in row for row in rows)
    typed = {(row["layer"], row["head"]) for row in rows if "ov_copying" in row["types"]}
    assert typed == {(r["layer"], r["head"]) for r in result.summary["ov_families"]["heads"]["ov_copying"]}
    assert result.metrics["n_ov_copying_heads"] == len(typed)
    figure = ctx.artifacts["head_scores_heatmap"]
    assert figure.artifact_type == "plotly"
