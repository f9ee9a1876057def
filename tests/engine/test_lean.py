"""The lean training module and the batched head ablation agree with TransformerLens.

`LeanTransformer` must compute the same function as the TransformerBridge under
the same weights (training uses one, analysis the other), and the batched
ablation methods must give the losses of the one-head-at-a-time hook loop.
"""

from __future__ import annotations

import pytest
import torch

from experiments.engine.analysis.ablation import (
    batched_ablation,
    head_ablation,
    hook_batched_ablation,
    per_head_loop,
)
from experiments.engine.datasets import RepeatedRandomTokens, repeated_random_tokens
from experiments.engine.lean import LeanTransformer, init_like_native, lean_from_bridge, to_bridge
from experiments.engine.models import NativeConfig, build_native, load_checkpoint
from experiments.engine.runtime import RunContext
from experiments.engine.training import TrainingParams, train

ATOL = 1e-5
ATTN_ONLY = NativeConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=32, d_vocab=50, attn_only=True)
WITH_MLPS = NativeConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=32, d_vocab=50, attn_only=False, d_mlp=64)
ABLATION_CONFIGS = {
    "attention-only": NativeConfig(n_layers=3, n_heads=4, d_model=32, d_head=8, n_ctx=32, d_vocab=50, attn_only=True),
    "with MLPs": NativeConfig(
        n_layers=3, n_heads=4, d_model=32, d_head=8, n_ctx=32, d_vocab=50, attn_only=False, d_mlp=64
    ),
}


def tokens_for(config: NativeConfig, *, n_sequences: int = 6, seed: int = 0) -> torch.Tensor:
    half = min(10, (config.n_ctx - 1) // 2)
    ref = RepeatedRandomTokens(n_sequences=n_sequences, half_length=half, seed=seed)
    return repeated_random_tokens(ref, d_vocab=config.d_vocab)


@pytest.mark.parametrize("config", [ATTN_ONLY, WITH_MLPS], ids=["attention-only", "with MLPs"])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_lean_model_gives_the_bridges_logits(config, seed):
    bridge = build_native(config, seed=seed).eval()
    lean = LeanTransformer(config)
    init_like_native(lean, seed=seed)
    lean.eval()
    tokens = tokens_for(config, seed=seed)
    with torch.no_grad():
        expected = bridge(tokens)
        assert torch.allclose(lean(tokens), expected, atol=ATOL)
        assert torch.allclose(lean_from_bridge(bridge, config)(tokens), expected, atol=ATOL)


@pytest.mark.parametrize("normalization_type", ["LN", "LNPre", "RMS", None])
@pytest.mark.parametrize("act_fn", ["gelu", "gelu_new", "relu", "silu"])
def test_lean_model_matches_the_bridge_for_every_normalization_and_activation(normalization_type, act_fn):
    config = WITH_MLPS.model_copy(update={"normalization_type": normalization_type, "act_fn": act_fn})
    bridge = build_native(config, seed=3).eval()
    tokens = tokens_for(config)
    with torch.no_grad():
        assert torch.allclose(lean_from_bridge(bridge, config).eval()(tokens), bridge(tokens), atol=ATOL)


def test_a_trained_lean_model_hands_its_weights_to_a_bridge():
    torch.manual_seed(0)
    lean = LeanTransformer(WITH_MLPS).eval()  # random weights, unlike any seed's initialisation
    tokens = tokens_for(WITH_MLPS)
    with torch.no_grad():
        assert torch.allclose(to_bridge(lean)(tokens), lean(tokens), atol=ATOL)


def test_a_checkpoint_saved_by_training_loads_into_a_bridge_with_the_same_logits(tmp_path):
    params = TrainingParams(model=ATTN_ONLY, steps=6, batch_size=4, checkpoint_steps=[3], log_every=2, eval_every=3)
    ctx = RunContext(seed=5, device="cpu", artifact_dir=tmp_path)
    outcome = train(params, ctx)
    assert [c["step"] for c in outcome.checkpoints] == [3, 6]
    final = ctx.artifacts[outcome.checkpoints[-1]["artifact"]]
    bridge, config = load_checkpoint(tmp_path / final.path)
    assert config == ATTN_ONLY
    tokens = tokens_for(ATTN_ONLY)
    with torch.no_grad():
        trained = outcome.model(tokens)
        assert torch.allclose(bridge.eval()(tokens), trained, atol=ATOL)
        # Training moved the weights: the checkpoint is not the initialisation.
        assert not torch.allclose(build_native(ATTN_ONLY, seed=5).eval()(tokens), trained, atol=1e-3)


@pytest.mark.parametrize("name", list(ABLATION_CONFIGS))
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_batched_ablation_equals_the_one_head_at_a_time_hook_loop(name, mode):
    config = ABLATION_CONFIGS[name]
    bridge = build_native(config, seed=2).eval()
    tokens = tokens_for(config)
    clean, expected = per_head_loop(bridge, tokens, mode=mode)
    lean = lean_from_bridge(bridge, config).eval()
    for max_variants in (1, 64):  # one head per chunk, and every head of a layer in one chunk
        batched_clean, ablated = batched_ablation(lean, tokens, mode=mode, max_variants=max_variants)
        assert batched_clean == pytest.approx(clean, abs=ATOL)
        assert ablated.shape == (config.n_layers, config.n_heads)
        assert torch.allclose(ablated, expected, atol=ATOL)
    # Every head matters a little in a random model: the comparison is not between constants.
    assert (expected - clean).abs().min() > 0


@pytest.mark.parametrize("name", list(ABLATION_CONFIGS))
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_hook_batched_ablation_equals_the_one_head_at_a_time_hook_loop(name, mode):
    config = ABLATION_CONFIGS[name]
    bridge = build_native(config, seed=4).eval()
    tokens = tokens_for(config)
    clean, expected = per_head_loop(bridge, tokens, mode=mode)
    hook_clean, ablated = hook_batched_ablation(bridge, tokens, mode=mode)
    assert hook_clean == pytest.approx(clean, abs=ATOL)
    assert torch.allclose(ablated, expected, atol=ATOL)


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_ablation_methods_agree_on_masked_losses(mode):
    config = ABLATION_CONFIGS["with MLPs"]
    bridge = build_native(config, seed=6).eval()
    tokens = tokens_for(config)
    mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1)
    mask[:, tokens.shape[1] // 2 :] = 1.0  # only the second, predictable half counts
    clean, expected = per_head_loop(bridge, tokens, mode=mode, loss_mask=mask)
    for result in (
        head_ablation(bridge, tokens, mode=mode, config=config, loss_mask=mask),  # the cached-residual method
        head_ablation(bridge, tokens, mode=mode, config=None, loss_mask=mask),  # hooks, as for pretrained models
    ):
        assert result[0] == pytest.approx(clean, abs=ATOL)
        assert torch.allclose(result[1], expected, atol=ATOL)
    unmasked_clean, _ = per_head_loop(bridge, tokens, mode=mode)
    assert clean != pytest.approx(unmasked_clean, abs=1e-3)
