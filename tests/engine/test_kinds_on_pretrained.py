"""The analysis kinds run on a Hugging Face model loaded offline, as they would on a GPU worker with GPT-2."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.engine.test_models import model_folders_allowed, tiny_pretrained  # noqa: F401  (fixtures)


@pytest.fixture
def pretrained_ref(tiny_pretrained):  # noqa: F811
    return {"source": "pretrained", "name": str(tiny_pretrained)}


def test_head_detection_on_a_pretrained_model(local_runs, pretrained_ref):
    data = {"n_sequences": 4, "half_length": 10}
    result = local_runs.run("head_detection", {"model": pretrained_ref, "data": data})[1]
    assert len(result.summary["heads"]) == 2  # 1 layer x 2 heads
    assert 0.0 <= result.metrics["max_induction_score"] <= 1.0
    assert -1.0 <= result.metrics["max_ov_copying_score"] <= 1.0  # over its whole vocabulary
    # Its word-level tokens (w0..w27) have no ordinal meaning: no successor score rather than a meaningless one.
    successor = result.summary["ov_families"]["successor"]
    assert successor["applicable"] is False and successor["n_pairs"] == 0
    assert successor["why_not"] == "its tokenizer has fewer than 8 one-token ordinal pairs (1 -> 2, Monday -> ...)"
    assert "max_successor_score" not in result.metrics


def test_head_detection_scores_successor_heads_where_the_tokenizer_has_ordinal_tokens(local_runs, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    days = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
    words = [str(i) for i in range(1, 21)] + days + ["<|endoftext|>"]
    folder = tmp_path / "ordinal-gpt2"
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=len(words))
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<|endoftext|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>").save_pretrained(folder)
    data = {"n_sequences": 4, "half_length": 10}
    result = local_runs.run("head_detection", {"model": {"source": "pretrained", "name": str(folder)}, "data": data})[1]
    successor = result.summary["ov_families"]["successor"]
    assert successor["applicable"] and successor["n_pairs"] == 19 + 6
    assert successor["sequences"] == ["numerals (no leading space)", "days (no leading space)"]
    assert 0.0 <= result.metrics["max_successor_score"] <= 1.0
    assert all(0.0 <= row["successor"] <= 1.0 for row in result.summary["heads"])
    assert any(line.startswith(("Successor heads (", "No successor head")) for line in result.findings)


def test_composition_scores_on_a_pretrained_model_with_two_layers(local_runs, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "two-layer"
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=30)).save_pretrained(folder)
    result = local_runs.run("composition_scores", {"model": {"source": "pretrained", "name": str(folder)}})[1]
    assert len(result.summary["strongest"]) == 12
    assert {row["mode"] for row in result.summary["strongest"]} <= {"Q", "K", "V"}
    assert result.metrics["baseline_k_mean"] > 0


def test_head_ablation_on_a_pretrained_model_uses_hooks(local_runs, pretrained_ref):
    data = {"source": "repeated_random_tokens", "n_sequences": 4, "half_length": 10}
    params = {"model": pretrained_ref, "data": data, "mode": "mean"}
    result = local_runs.run("head_ablation", params)[1]
    assert len(result.summary["ranking"]) == 2
    assert result.metrics["clean_loss"] > 0


def test_model_diff_of_pretrained_models_decodes_the_listed_tokens(local_runs, pretrained_ref):
    data = {"source": "repeated_random_tokens", "n_sequences": 4, "half_length": 10}
    params = {"models": [pretrained_ref, pretrained_ref], "data": data, "top_k": 3, "window": 1}
    _, result, ctx = local_runs.run("model_diff", params)
    assert result.metrics["mean_abs_loss_difference"] == pytest.approx(0.0, abs=1e-5)  # the same model twice
    table = json.loads((ctx.artifact_dir / ctx.artifacts["top_contexts"].path).read_text())
    assert all(row["text"].startswith("w") and len(row["window_text"]) == len(row["window"]) for row in table["drops"])


def test_model_diff_reads_a_pretrained_models_vocabulary_from_its_config(pretrained_ref):
    from experiments.engine.kinds import model_diff

    native = {"source": "native", "config": {"d_vocab": 64, "n_ctx": 32, "d_model": 16, "n_heads": 2, "d_head": 8}}
    params = model_diff.Params(
        models=[native, pretrained_ref], data={"source": "repeated_random_tokens", "n_sequences": 4, "half_length": 10}
    )
    problems = model_diff.check_references(params, runs=None)
    assert list(problems) == ["models.1"] and "vocabulary of 30" in problems["models.1"]


def test_activation_inversion_on_a_pretrained_model_reads_its_hooks(local_runs, pretrained_ref):
    params = {"model": pretrained_ref, "layers": [0, 1], "steps": 20, "batch_size": 4, "n_eval_sequences": 8}
    _, result, ctx = local_runs.run("activation_inversion", params)
    assert result.summary["hooks"] == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"]
    assert "random_reconstruction_accuracy" not in result.metrics  # no native config to copy
    guesses = json.loads((ctx.artifact_dir / ctx.artifacts["top10_guesses"].path).read_text())
    assert guesses["examples"][0]["guesses_text"][0][0].startswith(("w", "<"))


def test_activation_inversion_refuses_a_layer_beyond_a_pretrained_model(pretrained_ref):
    from experiments.engine.kinds.activation_inversion import Params, check_references

    problems = check_references(Params(model=pretrained_ref, layers=[2]), runs=None)
    assert list(problems) == ["layers.0"] and "it has 1 layers" in problems["layers.0"]


FINETUNE_TINY = {
    "steps": 10,
    "warmup_steps": 2,
    "batch_size": 4,
    "lr": 1e-2,
    "original_data": {"n_sequences": 8, "half_length": 10},
    "n_new_sequences": 8,
}


def test_finetune_comparison_fine_tunes_a_pretrained_model_and_classifies_every_head(local_runs, pretrained_ref):
    from experiments.engine.kinds import finetune_comparison as kind

    params = {**FINETUNE_TINY, "base": pretrained_ref}
    _, result, ctx = local_runs.run("finetune_comparison", params, seed=2)
    rows = result.summary["heads"]
    assert len(rows) == 2 and {r["class"] for r in rows} <= set(kind.CLASSES)  # 1 layer x 2 heads
    assert set(result.metrics) <= set(kind.METRICS) and "base_final_loss" not in result.metrics
    assert all(math.isfinite(value) for value in result.metrics.values())
    assert sum(result.metrics[f"n_{c.replace('-', '')}_heads"] for c in kind.CLASSES) == 2
    # The model was measured before it was fine-tuned in place: the two measurements differ.
    assert result.metrics["new_data_loss_after"] != result.metrics["new_data_loss_before"]
    assert result.findings and result.headline == "head_classes"
    # The context (32) caps the default sequence length (64); the weights are not saved, and the run says so.
    assert result.summary["sequence_length"] == 32
    assert "not saved" in result.summary["finetuned_weights"]
    assert not any(record.artifact_type == "checkpoint" for record in ctx.artifacts.values())
    assert {"head_classes", "js_divergence", "importance", "original_loss"} <= set(ctx.artifacts)
    assert [p["key"] for p in ctx.parts] == ["finetune"] and "not saved" in ctx.parts[0]["findings"][0]
    assert {"finetune/loss", "finetune/copied_segment_loss", "finetune/repeated_tokens_second_half_loss"} <= set(
        ctx.series
    )
    assert any("not saved" in entry["message"] for entry in ctx.log_entries)


def test_fine_tuning_a_pretrained_model_starts_each_sequence_with_its_bos_in_its_vocabulary(pretrained_ref, tmp_path):
    from experiments.engine.datasets import MarkovText
    from experiments.engine.models import PretrainedModelRef, load_model
    from experiments.engine.training import bridge_batch
    from tests.engine.test_models import ctx

    model = load_model(PretrainedModelRef(**pretrained_ref), ctx(tmp_path))
    tokens, _ = bridge_batch(model, MarkovText(), batch=4, length=20, generator=torch.Generator().manual_seed(0))
    assert (tokens[:, 0] == 29).all() and tokens.max() < 30  # <|endoftext|>, the tiny tokenizer's BOS


def test_finetune_comparison_refuses_a_text_corpus_and_long_original_data_for_a_pretrained_base(pretrained_ref):
    from experiments.engine.kinds.finetune_comparison import Params, check_references

    corpus = {"source": "text_corpus", "dataset": 1}
    problems = check_references(Params(base=pretrained_ref, finetune_data=corpus), runs=None)
    assert list(problems) == ["finetune_data", "original_data.half_length"]  # its context is 32 tokens
    assert "platform's tokenizer, not the model's" in problems["finetune_data"]
    assert "the model's context is 32" in problems["original_data.half_length"]
    short = {"n_sequences": 8, "half_length": 15}
    assert check_references(Params(base=pretrained_ref, original_data=short), runs=None) == {}


def test_successor_heads_after_layer_0_read_the_embedding_plus_what_mlp0_writes(tmp_path):
    """Gould et al.'s effective embedding: W_E + MLP0(LN2(W_E)), checked against the Hugging Face modules."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from experiments.engine.analysis.ov_circuits import _effective_embedding
    from experiments.engine.models import PretrainedModelRef, load_model
    from tests.engine.test_models import ctx

    folder = tmp_path / "two-layer"
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=30)).save_pretrained(folder)
    model = load_model(PretrainedModelRef(name=str(folder)), ctx(tmp_path))
    reference = GPT2LMHeadModel.from_pretrained(folder).transformer
    ids = [3, 5, 7]
    with torch.no_grad():
        embedded = reference.wte.weight[ids]
        expected = embedded + reference.h[0].mlp(reference.h[0].ln_2(embedded))
    assert torch.allclose(_effective_embedding(model, ids), expected, atol=1e-5)


def test_causal_tracing_on_a_pretrained_model_tokenizes_the_facts_as_text(local_runs, tmp_path, model_folders_allowed):  # noqa: F811
    """A tiny GPT-2 whose word-level tokenizer knows the facts' words: the prompts are written as text and
    tokenized piece by piece, so the subject's positions come from its own tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from experiments.engine.facts import Facts, fact_world

    facts = Facts(n_subjects=12, n_relations=1, n_attributes=3)
    words = [w for w in fact_world(facts).vocabulary if not w.startswith("<")]
    vocab = {w: i for i, w in enumerate(words)} | {"<unk>": len(words), "<|endoftext|>": len(words) + 1}
    folder = tmp_path / "facts-gpt2"
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=len(vocab))
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    ).save_pretrained(folder)

    params = {"model": {"source": "pretrained", "name": str(folder)}, "facts": facts.model_dump(), "n_prompts": 6,
              "noise_samples": 2, "known_only": False}  # fmt: skip
    _, result, ctx = local_runs.run("causal_tracing", params)
    assert result.summary["tokenized_with"] == "the model's tokenizer"
    assert result.summary["subject_token_lengths"] and max(result.summary["subject_token_lengths"]) <= 3
    assert set(result.summary["maps"]["resample"]) == {"resid", "attn", "mlp"}
    assert len(result.summary["heads"]["noise"]) == 4  # 2 layers x 2 heads
    assert result.metrics["before_subject_recovery_resample"] == pytest.approx(0, abs=1e-4)
    assert "tracing_maps" in ctx.artifacts
