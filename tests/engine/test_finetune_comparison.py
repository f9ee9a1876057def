"""finetune_comparison: the markov_text source, fine-tuning through the training loop, the head classification
rules, and a tiny run end to end (a model trained here, and one from another run's checkpoint)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from experiments.engine.datasets import InductionTraining, MarkovText, induction_batch, markov_batch
from experiments.engine.errors import EngineError
from experiments.engine.kinds import finetune_comparison as kind
from experiments.engine.lean import LeanTransformer, init_like_native
from experiments.engine.runtime import MemoryReporter, RunContext
from experiments.engine.training import SMALL_ATTN_ONLY, TrainingParams, train

TINY = {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_head": 8, "n_ctx": 24, "d_vocab": 16}
TINY_RUN = {
    "base_training": {"model": TINY, "steps": 30, "warmup_steps": 5, "n_checkpoints": 1},
    "steps": 10,
    "warmup_steps": 2,
    "batch_size": 8,
    "original_data": {"n_sequences": 8, "half_length": 11},
    "n_new_sequences": 8,
}


# --- markov_text -------------------------------------------------------------------------------------------------


def _successor_table(ref: MarkovText, d_vocab: int) -> torch.Tensor:
    return torch.randint(
        1, d_vocab, (d_vocab, ref.branching), generator=torch.Generator().manual_seed(ref.language_seed)
    )


def test_markov_text_follows_its_language_outside_the_repeated_phrase():
    ref = MarkovText(branching=3, language_seed=7, min_segment=4, max_segment=6)
    tokens, repeated = markov_batch(ref, batch=16, length=40, d_vocab=32, generator=torch.Generator().manual_seed(1))
    table = _successor_table(ref, 32)
    assert (tokens[:, 0] == 0).all() and (tokens[:, 1:] > 0).all()
    for row in range(16):
        copied = repeated[row].nonzero().flatten().tolist()
        first_copied = copied[0] - 1  # the first copied token is not predictable, so not in the mask
        for pos in range(2, 40):
            if first_copied <= pos <= copied[-1] + 1:  # inside the copy, or just after it
                continue
            assert tokens[row, pos] in table[tokens[row, pos - 1]], (row, pos)
        # The repeated phrase is a copy of an earlier stretch of the same sequence.
        size = len(copied) + 1
        source = tokens[row, first_copied : first_copied + size]
        earlier = tokens[row, :first_copied].unfold(0, size, 1)
        assert (earlier == source).all(dim=1).any(), row


def test_markov_text_is_deterministic_and_its_language_independent_of_the_run_seed():
    ref = MarkovText(branching=1)  # one successor: the chain is a fixed function of the previous token
    a, _ = markov_batch(ref, batch=4, length=20, d_vocab=16, generator=torch.Generator().manual_seed(3))
    b, _ = markov_batch(ref, batch=4, length=20, d_vocab=16, generator=torch.Generator().manual_seed(3))
    c, _ = markov_batch(ref, batch=4, length=20, d_vocab=16, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    table = _successor_table(ref, 16)[:, 0]
    for tokens in (a, c):  # the same language whatever the batch seed (position 2 is never inside a copy)
        assert torch.equal(table[tokens[:, 1]], tokens[:, 2])
    with pytest.raises(ValidationError):
        MarkovText(min_segment=9, max_segment=8)


def test_induction_batch_is_unchanged_by_sharing_its_copy_step():
    """train_transformer's science tests pin results drawn from these batches: the draws must stay the same
    (these are the batches of the code before markov_text shared the copy step)."""
    tokens, predictable = induction_batch(
        InductionTraining(), batch=2, length=12, d_vocab=10, generator=torch.Generator().manual_seed(0)
    )
    assert tokens.tolist() == [[0, 1, 3, 7, 8, 7, 8, 3, 7, 8, 7, 8], [0, 4, 2, 3, 1, 1, 4, 2, 3, 1, 1, 3]]
    assert predictable.sum().item() == 8


def test_train_transformer_trains_on_markov_text_and_says_so(local_runs):
    params = {"model": TINY, "steps": 20, "warmup_steps": 2, "n_checkpoints": 1, "data": {"source": "markov_text"}}
    _, result, ctx = local_runs.run("train_transformer", params, seed=1)
    assert "for 20 steps on Markov text" in result.findings[0]
    assert "copied_segment_loss" in ctx.series  # the repeated phrase is what induction predicts


# --- fine-tuning through the training loop -----------------------------------------------------------------------


def _ctx(tmp_path, seed=0) -> RunContext:
    return RunContext(seed=seed, device="cpu", artifact_dir=tmp_path, reporter=MemoryReporter())


def test_train_continues_from_the_given_weights(tmp_path):
    config = SMALL_ATTN_ONLY.model_copy(update=TINY)
    start = LeanTransformer(config)
    init_like_native(start, seed=5)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    params = TrainingParams(model=config, steps=2, lr=1e-6, warmup_steps=0, n_checkpoints=1, batch_size=4)
    outcome = train(params, _ctx(tmp_path, seed=9), name_prefix="ft-", initial=start)
    assert outcome.model is start
    # A tiny rate barely moves the weights: training started from them, not from seed 9's fresh model.
    assert all(torch.allclose(before[k], v, atol=1e-4) for k, v in start.state_dict().items())
    assert [c["artifact"] for c in outcome.checkpoints] == ["ft-checkpoint-2"]


def test_train_refuses_weights_of_another_architecture(tmp_path):
    config = SMALL_ATTN_ONLY.model_copy(update=TINY)
    other = LeanTransformer(config.model_copy(update={"n_heads": 4}))
    with pytest.raises(EngineError, match="architecture"):
        train(TrainingParams(model=config, steps=1), _ctx(tmp_path), initial=other)


# --- the classification -----------------------------------------------------------------------------------------


def test_js_divergence_is_zero_for_equal_patterns_and_one_bit_for_disjoint_ones():
    p = torch.zeros(1, 1, 2, 3, 3)  # [layer, batch, head, q, k]
    p[..., 0] = 1.0
    q = p.clone()
    q[:, :, 1, 1:, 0], q[:, :, 1, 1:, 1] = 0.0, 1.0  # head 1 moves its attention for queries after the first
    js = kind.js_divergence(p, q)
    assert js[0, 0] == pytest.approx(0.0) and js[0, 1] == pytest.approx(1.0)


def _snapshot(induction, previous, importance_original, importance_new):
    zeros = torch.zeros(1, 5)
    return {
        "scores": {"induction": torch.tensor([induction]), "previous_token": torch.tensor([previous]),
                   "duplicate_token": zeros},
        "importance": {"original": torch.tensor([importance_original]), "new": torch.tensor([importance_new])},
    }  # fmt: skip


def test_each_class_follows_its_rule():
    # Heads: kept induction head, up-weighted previous-token head, new head, lost head, inactive head.
    before = _snapshot(
        [0.9, 0.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.1, 0.5, 0.0], [2.0, 0.3, 0.0, 0.4, 0.0], [1.0, 0.1, 0.0, 0.0, 0.0]
    )
    after = _snapshot(
        [0.85, 0.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.1, 0.1, 0.2], [1.8, 0.3, 0.5, 0.0, 0.0], [1.1, 0.9, 0.6, 0.0, 0.0]
    )
    js = {"original": torch.tensor([[0.05, 0.05, 0.3, 0.4, 0.0]]), "new": torch.zeros(1, 5)}
    rows = kind.classify(before, after, js)
    assert [r["class"] for r in rows] == ["kept", "re-weighted", "new", "lost", "inactive"]


def test_findings_state_what_became_of_the_induction_heads_and_the_new_circuit_fraction():
    before = _snapshot([0.9, 0.8, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, 0.0], [1.0, 0.5, 0.0])
    after = _snapshot([0.85, 0.5, 0.0], [0.0, 0.0, 0.0], [1.9, 0.2, 0.4], [1.0, 0.1, 0.3])
    for snapshot, loss in ((before, 2.0), (after, 3.0)):
        snapshot["scores"]["duplicate_token"] = torch.zeros(1, 3)
        snapshot.update(original_loss=loss, original_first_half_loss=4.1, original_second_half_loss=loss - 1.5,
                        new_data_loss=5.0 - loss)  # fmt: skip
    js = {"original": torch.tensor([[0.01, 0.3, 0.0]]), "new": torch.zeros(1, 3)}
    rows = kind.classify(before, after, js)
    assert [r["class"] for r in rows] == ["kept", "re-weighted", "new"]
    metrics = kind._metrics(rows, before, after, js)
    assert metrics["new_circuit_fraction"] == pytest.approx(1 / 3)  # L0H2 of the three important afterwards
    assert metrics["induction_heads_kept_fraction"] == 0.5
    lines = kind.findings(rows, metrics)
    assert lines[0] == (
        "Its 2 induction heads after fine-tuning: 1 kept, 1 re-weighted (induction score before → after: "
        "L0H0 0.90 → 0.85, L0H1 0.80 → 0.50)."
    )
    assert lines[1] == "1 of 3 heads important after fine-tuning is new (new_circuit_fraction 0.33): L0H2."
    assert "from 2.00 to 3.00 nats" in lines[3]


def test_a_head_near_the_importance_line_is_reweighted_not_new():
    """Used a little before (0.07 nats: in use, not important), important after: up-weighted, not built anew."""
    before, after = _snapshot([0.0], [0.0], [0.07], [0.0]), _snapshot([0.0], [0.0], [0.3], [0.0])
    for snapshot in (before, after):
        snapshot["scores"]["duplicate_token"] = torch.zeros(1, 1)
    still = {"original": torch.zeros(1, 1), "new": torch.zeros(1, 1)}
    assert kind.classify(before, after, still)[0]["class"] == "re-weighted"
    before["importance"]["original"] = torch.full((1, 1), kind.IN_USE_NATS - 0.01)
    assert kind.classify(before, after, still)[0]["class"] == "new"


def test_a_changed_pattern_or_type_is_reweighted_not_kept():
    before = _snapshot([0.9], [0.0], [2.0], [1.0])
    before["scores"]["duplicate_token"] = torch.zeros(1, 1)
    after = {k: {n: t.clone() for n, t in v.items()} for k, v in before.items()}
    still = {"original": torch.zeros(1, 1), "new": torch.zeros(1, 1)}
    assert kind.classify(before, after, still)[0]["class"] == "kept"
    moved = {"original": torch.full((1, 1), kind.KEPT_MAX_JS + 0.01), "new": torch.zeros(1, 1)}
    assert kind.classify(before, after, moved)[0]["class"] == "re-weighted"
    after["scores"]["previous_token"] = torch.full((1, 1), 0.5)  # gained a type
    assert kind.classify(before, after, still)[0]["class"] == "re-weighted"


# --- the kind end to end -----------------------------------------------------------------------------------------


def test_params_refuse_a_warmup_longer_than_the_fine_tuning_and_too_many_pretrained_tokens():
    pretrained = {"source": "pretrained", "name": "gpt2"}
    assert kind.Params(base=pretrained).base.name == "gpt2"  # fine-tuned through its bridge (test_kinds_on_pretrained)
    with pytest.raises(ValidationError, match="steps x batch_size x pretrained_sequence_length"):
        kind.Params(base=pretrained, steps=20_000, batch_size=512, pretrained_sequence_length=1024)
    with pytest.raises(ValidationError, match="warmup_steps"):
        kind.Params(steps=10, warmup_steps=20)
    with pytest.raises(ValidationError):
        kind.Params(steps=0)


def test_check_references_names_original_data_too_long_for_the_base_context(local_runs):
    params = kind.Params(base_training={"model": {"n_ctx": 32}})
    problems = kind.check_references(params, local_runs)
    assert list(problems) == ["original_data.half_length"]
    assert "the model's context is 32" in problems["original_data.half_length"]
    assert kind.check_references(kind.Params(), local_runs) == {}


def test_a_tiny_run_trains_fine_tunes_and_classifies_every_head(local_runs):
    _, result, ctx = local_runs.run("finetune_comparison", TINY_RUN, seed=3)
    rows = result.summary["heads"]
    assert len(rows) == 4 and {r["class"] for r in rows} <= set(kind.CLASSES)
    metrics = result.metrics
    assert sum(metrics[f"n_{c.replace('-', '')}_heads"] for c in kind.CLASSES) == 4
    assert 0.0 <= metrics["new_circuit_fraction"] <= 1.0
    important_after = sum(r["important_after"] for r in rows)
    assert metrics["new_circuit_fraction"] == (metrics["n_new_heads"] / important_after if important_after else 0.0)
    assert result.headline == "head_classes" and result.findings
    assert {"base-checkpoint-30", "finetuned-checkpoint-10", "head_classes", "js_divergence", "importance",
            "original_loss", "head_scores_before", "head_scores_after"} <= set(ctx.artifacts)  # fmt: skip
    assert [p["key"] for p in ctx.parts] == ["base", "finetune"]
    assert "base/loss" in ctx.series and "finetune/loss" in ctx.series
    assert set(metrics) <= set(kind.METRICS)
    assert "finetuned_weights" not in result.summary  # only a pretrained base's weights go unsaved


def test_fine_tuning_a_checkpoint_of_another_run(local_runs):
    base_id, _, _ = local_runs.run(
        "train_transformer", {"model": TINY, "steps": 30, "warmup_steps": 5, "n_checkpoints": 1}, seed=4
    )
    params = {k: v for k, v in TINY_RUN.items() if k != "base_training"}
    params["base"] = {"source": "run", "run": base_id, "artifact": "checkpoint-30"}
    params["finetune_data"] = {"source": "induction_training", "min_segment": 2, "max_segment": 4}
    _, result, ctx = local_runs.run("finetune_comparison", params, seed=4)
    assert "base_final_loss" not in result.metrics and "finetuned-checkpoint-10" in ctx.artifacts
    assert [p["key"] for p in ctx.parts] == ["finetune"]


def test_fine_tuning_leaves_the_base_model_unchanged_when_it_is_measured(local_runs):
    """Fine-tuning with a zero-ish rate changes nothing: every head present before is kept, none is new."""
    params = {**TINY_RUN, "lr": 1e-9}
    result = local_runs.run("finetune_comparison", params, seed=5)[1]
    assert result.metrics["n_new_heads"] == 0 and result.metrics["n_lost_heads"] == 0
    assert result.metrics["n_reweighted_heads"] == 0
    assert result.metrics["max_js_divergence"] < 1e-4
