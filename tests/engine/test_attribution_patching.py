"""Attribution patching: the estimate against exact patching, the prompt pairs, and the kind end to end."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.engine.analysis.attribution import attribution_patching
from experiments.engine.analysis.patching import head_patching, neuron_patching
from experiments.engine.analysis.ranks import ranks, spearman
from experiments.engine.errors import EngineError
from experiments.engine.ioi import WordEncoder
from experiments.engine.kinds import attribution_patching as kind
from experiments.engine.models import NativeConfig, build_native
from experiments.engine.prompt_pairs import PairProblems, PromptPairs, encode_pairs
from tests.engine.test_models import model_folders_allowed, tiny_pretrained  # noqa: F401  (fixtures)

# Small models in the IOI word vocabulary (256 ids, prompts up to 24 tokens).
IOI_SIZED = {"d_vocab": 256, "n_ctx": 32, "d_model": 32, "d_head": 8}
ATTN_ONLY = {"source": "native", "config": {**IOI_SIZED, "n_layers": 2, "n_heads": 2}}
WITH_MLP = {"source": "native", "config": {**IOI_SIZED, "n_layers": 2, "n_heads": 2, "attn_only": False, "d_mlp": 16}}
SMALL_IOI = {"source": "ioi_prompts", "n_prompts": 16}


def _metric(logits):
    return logits[:, -1, 3] - logits[:, -1, 5]


def _pair(clean="When Mary and John went to the store , John gave a drink to", corrupt=None, **answers):
    corrupt = corrupt or clean.replace("John gave", "Anna gave")
    return {"clean": clean, "corrupt": corrupt, "answer": "Mary", "wrong": "John", **answers}


def _tokens(seed: int, n: int = 6, length: int = 12, vocab: int = 20):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, vocab, (n, length), generator=generator)
    corrupt = clean.clone()
    corrupt[:, 4] = torch.randint(0, vocab, (n,), generator=generator)
    return clean, corrupt


def test_the_estimate_is_exact_where_the_metric_is_linear_in_the_heads():
    # One attention-only layer without layer norm: the logits are linear in each head's z.
    config = NativeConfig(n_layers=1, n_heads=4, d_model=32, d_head=8, n_ctx=12, d_vocab=20, normalization_type=None)
    model = build_native(config, seed=0)
    clean, corrupt = _tokens(1)
    estimate = attribution_patching(model, clean, corrupt, _metric)
    exact = head_patching(model, clean, corrupt, _metric)
    assert estimate.clean == pytest.approx(exact.clean) and estimate.corrupt == pytest.approx(exact.corrupt)
    assert torch.allclose(estimate.heads, exact.effects, atol=1e-5)
    assert exact.effects.abs().max() > 1e-4


def test_estimates_of_heads_and_neurons_track_exact_patching_in_a_model_with_mlps():
    config = NativeConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=12, d_vocab=20, attn_only=False, d_mlp=32)
    model = build_native(config, seed=0)
    clean, corrupt = _tokens(1)
    estimate = attribution_patching(model, clean, corrupt, _metric, neurons=True)
    assert estimate.heads.shape == (2, 4) and estimate.neurons.shape == (2, 32)
    assert spearman(estimate.heads, head_patching(model, clean, corrupt, _metric).effects) > 0.8
    exact_neurons = neuron_patching(model, clean, corrupt, _metric, max_rows=64)
    assert spearman(estimate.neurons, exact_neurons) > 0.8


def test_neuron_patching_matches_patching_one_neuron_alone():
    config = NativeConfig(n_layers=2, n_heads=2, d_model=16, d_head=8, n_ctx=12, d_vocab=20, attn_only=False, d_mlp=8)
    model = build_native(config, seed=0)
    clean, corrupt = _tokens(2, n=3)
    effects = neuron_patching(model, clean, corrupt, _metric, max_rows=7)  # 2 neurons per pass: chunks of 2
    _, cache = model.run_with_cache(corrupt)
    with torch.no_grad():
        base = float(_metric(model(clean)).mean())
        for layer, neuron in [(0, 0), (0, 7), (1, 3)]:

            def patch(post, hook, layer=layer, neuron=neuron):
                post = post.clone()
                post[:, :, neuron] = cache[f"blocks.{layer}.mlp.hook_post"][:, :, neuron]
                return post

            logits = model.run_with_hooks(clean, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", patch)])
            assert float(effects[layer, neuron]) == pytest.approx(float(_metric(logits).mean()) - base, abs=1e-5)


def test_a_frozen_model_gets_the_same_estimates():
    model = build_native(NativeConfig(n_layers=2, n_heads=2, d_model=16, d_head=8, n_ctx=12, d_vocab=20), seed=0)
    clean, corrupt = _tokens(3)
    before = attribution_patching(model, clean, corrupt, _metric).heads
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    assert torch.allclose(attribution_patching(model, clean, corrupt, _metric).heads, before, atol=1e-6)


def test_spearman_uses_mean_ranks_for_ties_and_is_nan_for_a_constant():
    assert ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 30.0, 400.0])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert spearman(torch.ones(4), torch.arange(4.0)) != spearman(torch.ones(4), torch.arange(4.0))  # NaN


def test_prompt_pairs_encode_in_the_word_vocabulary_with_the_answer_at_the_end():
    other = "Then , Anna and Tom went to the park . Tom gave a ball to"
    data = PromptPairs(
        pairs=[_pair()] * 3 + [_pair(other, other.replace(". Tom", ". Max"), answer="Anna", wrong="Tom")]
    )
    batch = encode_pairs(data, WordEncoder(256), n_ctx=32)
    assert batch.tokens.shape == batch.corrupt.shape
    assert (batch.tokens != batch.corrupt).sum(dim=1).tolist() == [1, 1, 1, 1]
    assert batch.end.tolist() == [14, 14, 14, 15]  # BOS + the words; the last is "to"
    logits = torch.zeros(4, batch.tokens.shape[1], 256)
    logits[torch.arange(4), batch.end, batch.answer] = 2.0
    assert batch.logit_difference(logits).tolist() == [2.0] * 4


def test_prompt_pair_problems_name_the_field_and_the_pair():
    data = PromptPairs(pairs=[
        _pair(), _pair(corrupt="When Mary and John went to the store , John gave a drink to Mary"),
        _pair(clean="When Mary and Zaphod went", corrupt="When Mary and John went"), _pair(wrong="Zaphod"),
    ])  # fmt: skip
    with pytest.raises(PairProblems) as caught:
        encode_pairs(data, WordEncoder(256), n_ctx=32)
    problems = caught.value.problems
    assert set(problems) == {"pairs.1.corrupt", "pairs.2.clean", "pairs.3.wrong"}
    assert "pair 1" in problems["pairs.1.corrupt"] and "same length" in problems["pairs.1.corrupt"]
    assert "'Zaphod'" in problems["pairs.2.clean"]


def test_too_few_pairs_or_equal_answers_are_refused_by_the_params():
    with pytest.raises(EngineError) as caught:
        kind_params({"data": {"source": "prompt_pairs", "pairs": [_pair()] * 3}})
    assert "data.prompt_pairs.pairs" in str(caught.value)
    with pytest.raises(EngineError, match="answer and wrong must differ"):
        kind_params({"data": {"source": "prompt_pairs", "pairs": [_pair(wrong="Mary")] * 4}})


def test_bad_combinations_are_refused_before_queueing():
    assert "nodes" in kind.check_references(kind_params({"model": ATTN_ONLY, "nodes": ["heads", "neurons"]}), None)
    tiny = {"source": "native", "config": {**IOI_SIZED, "n_layers": 1, "n_heads": 2}}
    assert "4" in kind.check_references(kind_params({"model": tiny}), None)["model"]
    assert kind.check_references(kind_params({"model": tiny, "exact": "never"}), None) == {}
    narrow = {"source": "native", "config": {"d_vocab": 64, "n_ctx": 32, "n_heads": 2}}
    assert "IOI word vocabulary" in kind.check_references(kind_params({"model": narrow}), None)["model"]
    pairs = {"source": "prompt_pairs", "pairs": [_pair()] * 3 + [_pair(corrupt="When Mary went to")]}
    problems = kind.check_references(kind_params({"model": ATTN_ONLY, "data": pairs}), None)
    assert list(problems) == ["data.pairs.3.corrupt"]
    with pytest.raises(EngineError, match="nodes"):
        kind_params({"nodes": ["neurons"]})
    with pytest.raises(EngineError, match="attention-only"):
        kind_params({"nodes": ["heads", "neurons"]})  # the IOI model trained here has no MLPs


def test_always_beyond_the_exact_budget_is_refused():
    big = {"source": "native", "config": {**IOI_SIZED, "n_layers": 12, "n_heads": 32, "attn_only": False,
                                           "d_mlp": 4096, "d_model": 256}}  # fmt: skip
    params = kind_params({"model": big, "exact": "always", "nodes": ["heads", "neurons"], "data": SMALL_IOI | {
        "n_prompts": 4096}})  # fmt: skip
    assert "4,194,304" in kind.check_references(params, None)["exact"]


def test_the_kind_compares_estimates_with_exact_patching_on_ioi_prompts(local_runs):
    _, result, ctx = local_runs.run("attribution_patching", {"model": WITH_MLP, "data": SMALL_IOI,
                                                             "nodes": ["heads", "neurons"], "top_k": 2})  # fmt: skip
    metrics = result.metrics
    assert -1 <= metrics["head_spearman"] <= 1 and -1 <= metrics["neuron_spearman"] <= 1
    assert set(ctx.artifacts) >= {"effects", "estimate_vs_exact", "head_effects", "neuron_effects"}
    assert result.headline == "estimate_vs_exact"
    assert [row["node"] for row in result.summary["circuit"]] == ["head", "head", "neuron", "neuron"]
    assert any("Spearman" in line for line in result.findings)
    assert any("Candidate circuit" in line for line in result.findings)
    figure = json.loads((ctx.artifact_dir / ctx.artifacts["estimate_vs_exact"].path).read_text())
    assert len(figure["data"]) == 3  # heads, neurons, the diagonal


def test_exact_patching_is_skipped_when_asked_and_the_estimates_still_come(local_runs):
    pairs = {"source": "prompt_pairs", "pairs": [_pair()] * 4}
    _, result, _ = local_runs.run("attribution_patching", {"model": ATTN_ONLY, "data": pairs, "exact": "never"})
    assert "head_spearman" not in result.metrics and result.headline == "head_effects"
    assert result.summary["exact"] == [] and len(result.summary["circuit"]) == 4


def test_a_checkpoint_of_an_ioi_training_run_is_analysed(local_runs):
    training = {"data": {"source": "ioi_prompts"}, "steps": 3, "n_checkpoints": 1, "eval_every": 3,
                "model": {"n_layers": 2, "n_heads": 2, "d_model": 32, "d_head": 8}}  # fmt: skip
    run_id, _, _ = local_runs.run("train_transformer", training)
    model = {"source": "run", "run": run_id, "artifact": "checkpoint-3"}
    result = local_runs.run("attribution_patching", {"model": model, "data": SMALL_IOI})[1]
    assert "head_spearman" in result.metrics and len(result.summary["circuit"]) == 4


def test_without_a_model_the_run_trains_the_ioi_model_first(local_runs):
    training = {"data": {"source": "ioi_prompts"}, "steps": 3, "eval_every": 3,
                "model": {"n_layers": 2, "n_heads": 2, "d_model": 32, "d_head": 8}}  # fmt: skip
    _, result, ctx = local_runs.run("attribution_patching", {"training": training, "data": SMALL_IOI})
    assert "ioi-checkpoint-3" in ctx.artifacts
    assert "head_spearman" in result.metrics


def kind_params(raw: dict):
    from experiments.engine.registry import registry

    return registry.get("attribution_patching").parse_params(raw)


# -- a pretrained model from a local folder (the GPU-worker path) -------------------------------------------------


@pytest.fixture
def ioi_pretrained(
    tmp_path,
    model_folders_allowed,  # noqa: F811
):
    """A tiny random GPT-2 (2 layers x 2 heads) whose word-level tokenizer knows the IOI words as one token each."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from experiments.engine.ioi import VOCABULARY

    vocab = {word: i for i, word in enumerate(["<|endoftext|>", "<unk>", *VOCABULARY[2:]])}
    folder = tmp_path / "ioi-gpt2"
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=len(vocab))
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    ).save_pretrained(folder)
    return {"source": "pretrained", "name": str(folder)}


def test_a_pretrained_model_is_analysed_through_its_tokenizer(local_runs, ioi_pretrained):
    params = {"model": ioi_pretrained, "data": SMALL_IOI, "nodes": ["heads", "neurons"], "top_k": 3}
    assert kind.check_references(kind_params(params), None) == {}
    _, result, _ = local_runs.run("attribution_patching", params)
    assert {"head_spearman", "neuron_spearman", "speedup"} <= set(result.metrics)
    assert len([row for row in result.summary["circuit"] if row["node"] == "neuron"]) == 3
    pairs = {"source": "prompt_pairs", "pairs": [_pair(), _pair(answer="Mary", wrong="Anna")] * 2}
    result = local_runs.run("attribution_patching", {"model": ioi_pretrained, "data": pairs})[1]
    assert result.summary["n_prompts"] == 4 and "head_spearman" in result.metrics


@pytest.mark.usefixtures("model_folders_allowed")
def test_a_pretrained_tokenizer_that_splits_every_name_is_refused_before_queueing(tiny_pretrained):  # noqa: F811
    params = kind_params({"model": {"source": "pretrained", "name": str(tiny_pretrained)}, "exact": "never"})
    problems = kind.check_references(params, None)
    assert list(problems) == ["model"] and "one token" in problems["model"]


def test_prompt_pairs_of_different_lengths_for_a_pretrained_tokenizer_are_refused(ioi_pretrained):
    pairs = [_pair()] * 3 + [_pair(corrupt="When Mary and John went to the store , Anna Anna gave a drink to")]
    params = kind_params({"model": ioi_pretrained, "data": {"source": "prompt_pairs", "pairs": pairs}})
    problems = kind.check_references(params, None)
    assert list(problems) == ["data.pairs.3.corrupt"] and "pair 3" in problems["data.pairs.3.corrupt"]
