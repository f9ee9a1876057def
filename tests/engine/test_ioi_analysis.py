"""The IOI analysis: DLA apportions the real logits, attention and ablation read the right positions, role rules."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.engine.analysis.ioi import (
    ATTENTION_MIN,
    ROLES,
    IOIAnalysis,
    all_head_sets,
    analyse_ioi,
    assign_roles,
    attention_scores,
    mean_ablated_logit_diffs,
)
from experiments.engine.ioi import IOIPrompts, end_logits, ioi_batch, logit_difference
from experiments.engine.models import NativeConfig, build_native

CONFIG = NativeConfig(n_layers=2, n_heads=3, d_model=32, d_head=8, n_ctx=32, d_vocab=256, attn_only=True)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_native(CONFIG, seed=0)


@pytest.fixture(scope="module")
def batch(model):
    return ioi_batch(IOIPrompts(n_prompts=24, seed=1), model)


@pytest.fixture(scope="module")
def analysis(model, batch):
    return analyse_ioi(model, batch)


def test_the_analysis_has_a_value_per_head_and_reads_as_json(analysis):
    for table in (analysis.dla, analysis.patching, analysis.attn_io, analysis.attn_s):
        assert table.shape == (2, 3)
    summary = json.loads(json.dumps(analysis.summary()))
    assert set(summary["roles"]) == set(ROLES) and len(summary["patching"]) == 2
    assert 0 <= analysis.accuracy <= 1


def test_head_dla_plus_the_rest_of_the_residual_stream_gives_the_logit_difference(model, batch, analysis):
    """The per-head DLA is the heads' share of the real logit difference, through the cached final-LN scale."""
    rows = torch.arange(len(batch))
    last = f"blocks.{CONFIG.n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch.tokens)
    resid = cache[last][rows, batch.end]  # [batch, d_model]
    heads = sum(
        torch.einsum("bhd,hdm->bm", cache[f"blocks.{layer}.attn.hook_z"][rows, batch.end], model.W_O[layer])
        for layer in range(CONFIG.n_layers)
    )
    rest = resid - heads
    rest = (rest - rest.mean(dim=-1, keepdim=True)) / cache["ln_final.hook_scale"][rows, batch.end]
    weight, bias = (p.detach() for p in model.ln_final.parameters())
    direction = (model.W_U[:, batch.io] - model.W_U[:, batch.s]).detach().T  # [batch, d_model]
    b_u = model.b_U if getattr(model, "b_U", None) is not None else torch.zeros(CONFIG.d_vocab)
    rest_share = (((rest * weight + bias) * direction).sum(-1) + b_u[batch.io] - b_u[batch.s]).detach()
    total = float(analysis.dla.sum()) + float(rest_share.mean())
    assert total == pytest.approx(float(logit_difference(end_logits(logits, batch), batch).mean()), abs=1e-4)
    assert analysis.dla.abs().max() > 1e-4


def test_attention_scores_read_the_prompt_positions():
    """A pattern that puts all attention on one key scores 1 exactly for the score that asks about that key."""

    class Batch:
        io_pos, s1_pos, s2_pos, end = (
            torch.tensor([1, 3]),
            torch.tensor([3, 1]),
            torch.tensor([5, 5]),
            torch.tensor([7, 6]),
        )

        def __len__(self):
            return 2

    batch = Batch()
    patterns = torch.zeros(1, 2, 4, 8, 8)  # [layer, batch, head, q, k]
    for b in range(2):
        patterns[0, b, 0, batch.end[b], batch.io_pos[b]] = 1  # head 0: END -> IO
        patterns[0, b, 1, batch.s2_pos[b] + 1, batch.s1_pos[b] + 1] = 1  # head 1: induction
        patterns[0, b, 2, batch.s2_pos[b], batch.s1_pos[b]] = 1  # head 2: duplicate token
    patterns[0, :, 3, torch.arange(1, 8), torch.arange(0, 7)] = 1  # head 3: previous token
    scores = attention_scores(patterns, batch)
    assert scores["end_io"][0].tolist() == [1, 0, 0, 0] and scores["end_s1"][0].tolist() == [0, 0, 0, 0]
    assert scores["induction"][0, 1] == 1 and scores["duplicate_token"][0, 2] == 1
    assert scores["previous_token"][0].tolist() == [0, 0, 0, 1]


def _analysis(**tables) -> IOIAnalysis:
    zeros = torch.zeros(3, 2)
    analysis = IOIAnalysis(
        n_layers=3, n_heads=2, logit_diff=3.0, accuracy=1.0, corrupt_logit_diff=0.0,
        dla=tables.get("dla", zeros), patching=tables.get("patching", zeros), attn_io=tables.get("attn_io", zeros),
        attn_s=tables.get("attn_s", zeros), attn_s2=tables.get("attn_s2", zeros), roles={},
        role_scores={name: tables.get(name, zeros) for name in ("induction", "duplicate_token", "previous_token")},
    )  # fmt: skip
    analysis.roles = assign_roles(analysis)
    return analysis


def test_the_role_rules_name_movers_negative_movers_and_s_inhibition_heads():
    attn_io = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.8, 0.7]])
    attn_s2 = torch.tensor([[0.0, 0.0], [0.6, 0.1], [0.0, 0.0]])
    analysis = _analysis(
        dla=torch.tensor([[0.0, 0.0], [0.1, 0.0], [2.0, -1.0]]),
        patching=torch.tensor([[0.0, -1.0], [-0.5, 0.0], [-1.5, 0.2]]),
        attn_io=attn_io, attn_s=attn_s2, attn_s2=attn_s2,
        induction=torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 0.0]]),
    )  # fmt: skip
    assert analysis.roles["name_mover"] == [(2, 0)]
    assert analysis.roles["negative_name_mover"] == [(2, 1)]
    # L0H1 matters but attends nowhere in particular; L1H0 matters, is earlier and reads S2.
    assert analysis.roles["s_inhibition"] == [(1, 0)]
    assert analysis.roles["induction"] == [(1, 0)] and analysis.roles["previous_token"] == []
    assert analysis.top_heads(3) == [(2, 0), (0, 1), (1, 0)]
    assert analysis.roles_of(1, 0) == ["s_inhibition", "induction"]


def test_a_head_that_reads_io_without_moving_the_logit_difference_is_no_name_mover():
    analysis = _analysis(
        dla=torch.tensor([[0.0, 0.0], [0.0, 0.0], [2.0, 0.0]]),
        patching=torch.tensor([[0.0, 0.0], [0.0, 0.0], [-0.01, 0.0]]),  # under 5% of the gap of 3
        attn_io=torch.full((3, 2), ATTENTION_MIN + 0.3),
    )
    assert analysis.roles["name_mover"] == []


def test_mean_ablating_no_head_changes_nothing_and_a_set_matches_hooking_it_by_hand(model, batch, analysis):
    heads = [(0, 1), (1, 2)]
    clean_again, ablated = mean_ablated_logit_diffs(model, batch, [[], heads]).tolist()
    assert clean_again == pytest.approx(analysis.logit_diff, abs=1e-5)
    _, cache = model.run_with_cache(batch.corrupt)

    def hook(z, hook):
        layer = int(hook.name.split(".")[1])
        z = z.clone()
        for lay, head in heads:
            if lay != layer:
                continue
            for template in batch.template.unique():
                same = batch.template == template
                z[same, :, head] = cache[hook.name][same, :, head].mean(dim=0)
        return z

    with torch.no_grad():
        logits = model.run_with_hooks(batch.tokens, fwd_hooks=[(f"blocks.{i}.attn.hook_z", hook) for i in range(2)])
    assert ablated == pytest.approx(float(logit_difference(end_logits(logits, batch), batch).mean()), abs=1e-4)
    assert len(all_head_sets(2, 3, 3)) == 20
