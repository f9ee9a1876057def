"""ioi_replication: the replication score on constructed IOI analyses (identical circuits, no name movers, weaker
models, models of other shapes), its params and reference checks, and tiny runs end to end: models given,
models trained here, and two tiny random GPT-2s read through their tokenizers."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.engine.analysis.ioi import IOIAnalysis
from experiments.engine.analysis.ioi_replication import (
    DEPTH_TOLERANCE,
    compare,
    depth_fraction,
    replication_score,
    role_matched_overlap,
    top_heads,
)
from experiments.engine.errors import InvalidParams
from experiments.engine.ioi import HELD_OUT_NAMES, VOCABULARY
from experiments.engine.kinds import ioi_replication as kind
from experiments.engine.registry import registry
from tests.engine.test_models import model_folders_allowed  # noqa: F401  (fixture)

TINY_IOI = {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_head": 8, "n_ctx": 32, "d_vocab": 256}
DATA = {"n_prompts": 16}
HELD_OUT = {"n_prompts": 16, "names": "held_out"}


def circuit(n_layers: int, n_heads: int, heads: dict, *, logit_diff: float = 3.0) -> IOIAnalysis:
    """An IOI analysis whose patching effects and roles are `heads`: {(layer, head): (effect, role or None)}."""
    patching = torch.zeros(n_layers, n_heads)
    roles: dict[str, list[tuple[int, int]]] = {}
    for (layer, head), (effect, role) in heads.items():
        patching[layer, head] = effect
        if role:
            roles.setdefault(role, []).append((layer, head))
    zeros = torch.zeros(n_layers, n_heads)
    return IOIAnalysis(
        n_layers=n_layers, n_heads=n_heads, logit_diff=logit_diff, accuracy=1.0, corrupt_logit_diff=0.0, dla=zeros,
        patching=patching, attn_io=zeros, attn_s=zeros, roles=roles,
    )  # fmt: skip


# A 3-layer, 4-head model with the paper's circuit in miniature, and GPT-2 small's heads (Wang et al. 2022).
SMALL = {
    (2, 1): (-1.5, "name_mover"),
    (2, 3): (-0.8, "name_mover"),
    (1, 0): (-0.6, "s_inhibition"),
    (1, 2): (-0.3, "induction"),
    (0, 1): (-0.2, "duplicate_token"),
}
GPT2 = {
    (9, 9): (-1.2, "name_mover"),
    (10, 0): (-0.9, "name_mover"),
    (8, 6): (-0.7, "s_inhibition"),
    (5, 5): (-0.4, "induction"),
    (3, 0): (-0.3, "duplicate_token"),
    (10, 7): (0.25, "negative_name_mover"),
}


def test_identical_circuits_replicate_fully():
    score, [comparison] = replication_score([circuit(3, 4, SMALL), circuit(3, 4, SMALL)], k=5)
    assert score == pytest.approx(1.0)
    assert comparison.role_matched_overlap == 1.0 and comparison.logit_difference_ratio == 1.0
    assert len(comparison.matched) == 5


def test_a_model_without_name_movers_scores_zero_whatever_else_it_shares():
    without = {head: (effect, None if role == "name_mover" else role) for head, (effect, role) in SMALL.items()}
    score, [comparison] = replication_score([circuit(3, 4, SMALL), circuit(3, 4, without)], k=5)
    assert score == 0.0 and not comparison.has_name_movers
    assert comparison.logit_difference_ratio == 1.0  # it does the task, but not with the paper's circuit


def test_the_logit_difference_ratio_scales_the_score_and_is_capped_at_one():
    reference = circuit(3, 4, SMALL, logit_diff=4.0)
    assert replication_score([reference, circuit(3, 4, SMALL, logit_diff=1.0)], k=5)[0] == pytest.approx(0.25)
    assert replication_score([reference, circuit(3, 4, SMALL, logit_diff=9.0)], k=5)[0] == pytest.approx(1.0)
    assert replication_score([reference, circuit(3, 4, SMALL, logit_diff=-2.0)], k=5)[0] == 0.0


def test_a_reference_that_does_not_do_the_task_leaves_nothing_to_replicate():
    reference = circuit(3, 4, SMALL, logit_diff=-0.1)
    assert replication_score([reference, circuit(3, 4, SMALL)], k=5)[0] == 0.0


def test_models_of_other_shapes_are_matched_by_role_and_depth_not_by_index():
    """GPT-2 small's circuit (12 layers x 12 heads) against the 3-layer one: the name movers at depth 0.79-0.88
    match the last layer's (0.83), S-inhibition at 0.71 matches layer 1 (0.5), and so on."""
    score, [comparison] = replication_score([circuit(3, 4, SMALL), circuit(12, 12, GPT2)], k=5)
    assert comparison.role_matched_overlap == 1.0 and score == pytest.approx(1.0)
    pairs = {(a.layer, a.head): (b.layer, b.head) for a, b in comparison.matched}
    assert {pairs[(2, 1)], pairs[(2, 3)]} == {(9, 9), (10, 0)} and pairs[(1, 0)] == (8, 6)
    # The same roles at the wrong depths: name movers at the start of the model match nothing.
    early = {(0, 3): (-1.2, "name_mover"), (1, 0): (-0.9, "name_mover"), **{k: v for k, v in GPT2.items()
                                                                           if v[1] != "name_mover"}}  # fmt: skip
    overlap = compare(circuit(3, 4, SMALL), circuit(12, 12, early), k=5).role_matched_overlap
    assert overlap == pytest.approx(3 / 5)


def test_heads_match_one_to_one_and_only_with_the_same_sign_of_effect():
    many_movers = {(2, h): (-1.0, "name_mover") for h in range(4)} | {(1, 1): (-0.9, "name_mover")}
    overlap, matched = role_matched_overlap(
        top_heads(circuit(3, 4, SMALL), 5), top_heads(circuit(3, 4, many_movers), 5)
    )
    assert len(matched) == 2 and overlap == pytest.approx(2 / 5)  # two name movers each; none for the others
    opposing = {head: (-effect, role) for head, (effect, role) in SMALL.items()}
    assert compare(circuit(3, 4, SMALL), circuit(3, 4, opposing), k=5).role_matched_overlap == 0.0


def test_unlabelled_heads_match_unlabelled_heads_at_the_same_depth():
    plain = {(2, 0): (-1.0, "name_mover"), (1, 1): (-0.5, None), (0, 2): (-0.4, None)}
    shifted = {(2, 0): (-1.0, "name_mover"), (1, 3): (-0.5, None), (2, 2): (-0.4, None)}
    assert compare(circuit(3, 4, plain), circuit(3, 4, shifted), k=3).role_matched_overlap == pytest.approx(2 / 3)


def test_depth_fractions_put_layers_in_the_middle_of_their_slice():
    assert depth_fraction(0, 1) == 0.5 and depth_fraction(2, 3) == pytest.approx(5 / 6)
    assert depth_fraction(9, 12) == pytest.approx(0.7917, abs=1e-4)
    assert 1 / 3 > DEPTH_TOLERANCE  # adjacent layers of a 3-layer model never match


def test_the_score_is_the_mean_over_the_models_after_the_reference_and_stays_in_range():
    reference = circuit(3, 4, SMALL, logit_diff=2.0)
    others = [circuit(3, 4, SMALL, logit_diff=1.0), circuit(3, 4, {}, logit_diff=5.0), circuit(3, 4, SMALL)]
    score, comparisons = replication_score([reference, *others], k=5)
    assert [c.score for c in comparisons] == pytest.approx([0.5, 0.0, 1.0])
    assert score == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one other"):
        replication_score([reference], k=5)


def test_the_score_never_falls_when_a_model_gets_closer_to_the_reference():
    reference = circuit(3, 4, SMALL)
    kept = dict(SMALL)
    scores = []
    for head in [(0, 1), (1, 2), (1, 0)]:  # lose one matching head after another
        scores.append(compare(reference, circuit(3, 4, kept), k=5).score)
        kept[head] = (kept[head][0], None)
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0 and scores[-1] < 1.0


# --- params and references ---------------------------------------------------------------------------------------


def _refused(params: dict) -> dict:
    with pytest.raises(InvalidParams) as caught:
        registry.get("ioi_replication").parse_params(params)
    return caught.value.errors


def test_fewer_than_two_models_is_refused_naming_the_field():
    errors = _refused({"models": [{"source": "native", "config": TINY_IOI}]})
    assert list(errors) == ["models"] and "at least 2" in errors["models"][0]
    assert list(_refused({"seeds": 1})) == ["seeds"]


def test_a_training_model_too_small_for_ioi_prompts_is_refused():
    errors = _refused({"train": {"data": {"source": "ioi_prompts"}, "model": {"d_vocab": 64}}})
    assert "train.model" in errors["params"][0] and f"at least {len(VOCABULARY)} words" in errors["params"][0]


def test_references_a_word_model_cannot_read_are_named():
    small = {"source": "native", "config": {**TINY_IOI, "d_vocab": 64}}
    params = kind.Params(models=[{"source": "native", "config": TINY_IOI}, small])
    problems = kind.check_references(params, runs=None)
    assert list(problems) == ["models.1"] and "vocabulary of at least" in problems["models.1"]


def _word_model(folder, model, words) -> dict:
    """Save a Hugging Face model with a word-level tokenizer over `words` (a name is one token when listed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    model.save_pretrained(folder)
    vocab = {word: i for i, word in enumerate(words)} | {"<unk>": len(words), "<|endoftext|>": len(words) + 1}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    ).save_pretrained(folder)
    return {"source": "pretrained", "name": str(folder)}


def _word_gpt2(folder, *, words, n_layer: int = 1, seed: int = 0) -> dict:
    """A tiny random GPT-2 with a word-level tokenizer over `words`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_embd=16, n_head=2, n_positions=32, vocab_size=len(words) + 2)
    return _word_model(folder, GPT2LMHeadModel(config), words)


WORDS = [w for w in VOCABULARY if not w.startswith("<")]


def test_tokenizers_that_share_too_few_names_are_refused(tmp_path, model_folders_allowed):  # noqa: F811
    a = _word_gpt2(tmp_path / "a", words=[w for w in WORDS if w not in HELD_OUT_NAMES[:12]])
    b = _word_gpt2(tmp_path / "b", words=[w for w in WORDS if w not in HELD_OUT_NAMES[12:]])
    problems = kind.check_references(kind.Params(models=[a, b], data=HELD_OUT), runs=None)
    assert list(problems) == ["models"] and "share only 0 of the 24 names" in problems["models"]
    none = _word_gpt2(tmp_path / "none", words=[w for w in WORDS if w not in HELD_OUT_NAMES])
    problems = kind.check_references(kind.Params(models=[a, none], data=HELD_OUT), runs=None)
    assert list(problems) == ["models.1"] and "Only 0 of the 24 names" in problems["models.1"]


# --- runs --------------------------------------------------------------------------------------------------------


def _check_result(result, ctx, n_models: int) -> None:
    assert [p["key"] for p in ctx.parts] == [f"model{i}" for i in range(n_models)]
    # Tiny random models have no name mover: with no circuit in the reference, replication_score is left out.
    assert set(result.metrics) >= set(kind.METRICS) - {"replication_score"}
    assert "replication_score" not in result.metrics and 0.0 <= result.metrics["mean_score"] <= 1.0
    assert result.metrics["n_models"] == n_models
    assert all(v is None or math.isfinite(v) for v in result.metrics.values())
    assert "model1_score" in result.metrics and "model0_score" not in result.metrics  # the reference has none
    assert {"logit_differences", "role_maps", "top_heads_by_depth"} <= set(ctx.artifacts)
    assert result.headline == "logit_differences" and result.findings[0].startswith("No replication_score")


def test_a_run_compares_the_models_it_is_given(local_runs):
    models = [{"source": "native", "config": TINY_IOI}, {"source": "native", "config": {**TINY_IOI, "n_heads": 3}}]
    _, result, ctx = local_runs.run("ioi_replication", {"models": models, "data": DATA, "top_k": 3})
    _check_result(result, ctx, 2)
    assert [row["n_heads"] for row in result.summary["models"]] == [2, 3]
    assert len(result.summary["models"][1]["top_heads"]) == 3


def test_a_run_without_models_trains_one_model_per_seed(local_runs):
    train = {"data": {"source": "ioi_prompts"}, "model": TINY_IOI, "steps": 3, "warmup_steps": 1, "batch_size": 4}
    _, result, ctx = local_runs.run("ioi_replication", {"train": train, "data": DATA, "seeds": 2}, seed=5)
    _check_result(result, ctx, 2)
    assert [p["label"] for p in ctx.parts] == ["seed 5", "seed 6"]
    assert {"model0/loss", "model1/loss"} <= set(ctx.series)
    # Each seed trained its own model: their logit differences differ.
    assert result.metrics["model0_logit_diff"] != result.metrics["model1_logit_diff"]
    assert {"model0-checkpoint-3", "model1-checkpoint-3"} <= set(ctx.artifacts)


def test_pretrained_models_read_the_same_prompts_with_the_names_they_share(
    local_runs,
    tmp_path,
    model_folders_allowed,  # noqa: F811
):
    """Two tiny random GPT-2s of different depths, one of which does not know four of the held-out names: both
    are evaluated on the 20 names they share."""
    a = _word_gpt2(tmp_path / "a", words=WORDS, n_layer=2)
    b = _word_gpt2(tmp_path / "b", words=[w for w in WORDS if w not in HELD_OUT_NAMES[:4]], seed=1)
    _, result, ctx = local_runs.run("ioi_replication", {"models": [a, b], "data": HELD_OUT, "top_k": 2})
    _check_result(result, ctx, 2)
    assert result.summary["shared_names"] == len(HELD_OUT_NAMES) - 4
    assert [p["label"] for p in ctx.parts] == ["a", "b"]
    assert [row["n_layers"] for row in result.summary["models"]] == [2, 1]


def test_the_gpu_configurations_architectures_run_through_their_bridges(
    local_runs,
    tmp_path,
    model_folders_allowed,  # noqa: F811
):
    """GPT-2, GPT-NeoX (Pythia's) and OPT, tiny and random, compared in one run as GPT-2 small, Pythia-160M and
    OPT-125M would be on a GPU worker."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, OPTConfig, OPTForCausalLM

    size = len(WORDS) + 2
    ends = {"bos_token_id": size - 1, "eos_token_id": size - 1}
    torch.manual_seed(0)
    neox = GPTNeoXConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                         max_position_embeddings=32, vocab_size=size, **ends)  # fmt: skip
    opt = OPTConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, ffn_dim=32, max_position_embeddings=32,
                    vocab_size=size, word_embed_proj_dim=16, pad_token_id=size - 1, **ends)  # fmt: skip
    models = [
        _word_gpt2(tmp_path / "gpt2", words=WORDS, n_layer=2),
        _word_model(tmp_path / "pythia", GPTNeoXForCausalLM(neox), WORDS),
        _word_model(tmp_path / "opt", OPTForCausalLM(opt), WORDS),
    ]
    _, result, ctx = local_runs.run("ioi_replication", {"models": models, "data": DATA, "top_k": 2})
    _check_result(result, ctx, 3)
    assert [p["label"] for p in ctx.parts] == ["gpt2", "pythia", "opt"]


def test_findings_state_the_score_each_model_and_the_roles_they_share():
    reference, other = circuit(3, 4, SMALL), circuit(12, 12, GPT2, logit_diff=1.5)
    rows = [
        kind.model_row("3-layer", reference, None, 5),
        kind.model_row("gpt2", other, compare(reference, other, k=5), 5),
    ]
    lines = kind.findings(rows, kind.run_metrics(rows))
    assert lines[0].startswith("replication_score 0.50: 1 model against the reference 3-layer (logit difference 3.00")
    assert "name movers L2H1, L2H3" in lines[0]
    assert lines[1] == (
        "gpt2: logit difference 1.50 (50% of the reference's, capped at 100%), name movers L9H9, L10H0, 5 of 5 top "
        "heads matched by role: score 0.50."
    )
    assert lines[2] == ("Roles among every model's top heads: name mover, S-inhibition, induction, duplicate-token.")
    assert kind.model_findings(rows[1], rows[0])[-1].endswith("name movers yes: score 0.50.")
    silent = circuit(3, 4, {(2, 0): (-1.0, None)})
    rows[0] = kind.model_row("silent", silent, None, 5)
    metrics = kind.run_metrics(rows)
    assert "replication_score" not in metrics and metrics["mean_score"] == pytest.approx(0.5)
    lines = kind.findings(rows, metrics)
    assert lines[0].startswith("No replication_score: 1 model") and "no name-mover candidate" in lines[1]
