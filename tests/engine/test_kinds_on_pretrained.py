"""The analysis kinds run on a Hugging Face model loaded offline, as they would on a GPU worker with GPT-2."""

from __future__ import annotations

import pytest

from tests.engine.test_models import model_folders_allowed, tiny_pretrained  # noqa: F401  (fixtures)


@pytest.fixture
def pretrained_ref(tiny_pretrained):  # noqa: F811
    return {"source": "pretrained", "name": str(tiny_pretrained)}


def test_head_detection_on_a_pretrained_model(local_runs, pretrained_ref):
    data = {"n_sequences": 4, "half_length": 10}
    result = local_runs.run("head_detection", {"model": pretrained_ref, "data": data})[1]
    assert len(result.summary["heads"]) == 2  # 1 layer x 2 heads
    assert 0.0 <= result.metrics["max_induction_score"] <= 1.0


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
