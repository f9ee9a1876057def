"""Per-head activation patching against a one-head-at-a-time reference."""

from __future__ import annotations

import pytest
import torch

from experiments.engine.analysis.patching import head_patching
from experiments.engine.models import NativeConfig, build_native

CONFIG = NativeConfig(n_layers=2, n_heads=3, d_model=24, d_head=8, n_ctx=12, d_vocab=20, attn_only=True)


def _last_logit(logits):
    return logits[:, -1, 3] - logits[:, -1, 5]


@pytest.fixture(scope="module")
def model():
    return build_native(CONFIG, seed=0)


def test_patching_a_run_with_itself_changes_nothing(model):
    tokens = torch.randint(0, 20, (4, 12), generator=torch.Generator().manual_seed(0))
    result = head_patching(model, tokens, tokens, _last_logit)
    assert result.clean == pytest.approx(result.corrupt)
    assert result.effects.abs().max() < 1e-5


def test_each_heads_effect_matches_patching_it_alone(model):
    generator = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 20, (5, 12), generator=generator)
    corrupt = clean.clone()
    corrupt[:, 4] = torch.randint(0, 20, (5,), generator=generator)
    result = head_patching(model, clean, corrupt, _last_logit)
    _, cache = model.run_with_cache(corrupt)
    for layer, head in [(0, 0), (0, 2), (1, 1)]:

        def patch(z, hook, layer=layer, head=head):
            z = z.clone()
            z[:, :, head] = cache[f"blocks.{layer}.attn.hook_z"][:, :, head]
            return z

        with torch.no_grad():
            logits = model.run_with_hooks(clean, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch)])
        expected = float(_last_logit(logits).mean()) - result.clean
        assert float(result.effects[layer, head]) == pytest.approx(expected, abs=1e-4)
    assert result.effects.abs().max() > 1e-4  # the corruption reaches the last position


def test_prompts_of_different_shapes_are_refused(model):
    with pytest.raises(ValueError, match="differ in shape"):
        head_patching(model, torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 6, dtype=torch.long), _last_logit)
