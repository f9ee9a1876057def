"""Every kind states its findings in words built from its numbers, and names a headline figure it saved.

Tiny models trained for a few dozen steps: the sentences are checked for what they say about the numbers
the same run reports, not for the science (tests/engine/test_induction_science.py does that).
"""

from __future__ import annotations

import re

import pytest

from experiments.engine.kinds import KIND_MODULES

TINY = {"steps": 40, "batch_size": 8, "warmup_steps": 5, "n_checkpoints": 4, "eval_every": 20}


def final(run_id: int, local_runs) -> dict:
    _, name = local_runs.checkpoints(run_id)[-1]
    return {"source": "run", "run": run_id, "artifact": name}


@pytest.fixture(scope="module")
def trained(local_runs) -> dict[int, int]:
    """A 1-layer and a 2-layer run, by depth."""
    return {
        depth: local_runs.run("train_transformer", {**TINY, "model": {"n_layers": depth}}, seed=depth)[0]
        for depth in (1, 2)
    }


def check(result, ctx) -> None:
    assert result.findings and all(isinstance(f, str) and f.endswith(".") for f in result.findings), result.findings
    assert result.headline is None or result.headline in ctx.artifacts


def test_train_transformer_states_what_it_trained_and_whether_it_copies(local_runs, trained):
    ctx = local_runs.contexts[trained[2]]
    findings = local_runs.run("train_transformer", {**TINY, "model": {"n_layers": 2}}, seed=2)[1].findings
    assert findings[0].startswith("Trained a 2-layer attention-only model (d_model 64, 4 heads,")
    assert "for 40 steps on induction-training data" in findings[0]
    assert re.search(r"It (does not copy|copies) in context", findings[1])
    assert findings[-1].startswith("Saved 4 checkpoints, steps ") and ctx.artifacts


def test_head_detection_names_heads_and_the_repeat_losses(local_runs, trained):
    _, result, ctx = local_runs.run("head_detection", {"model": final(trained[2], local_runs)})
    check(result, ctx)
    assert result.headline == "head_scores_heatmap"
    best = f"{result.metrics['max_induction_score']:.2f}"
    assert best in result.findings[0]
    first = f"{result.metrics['repeated_first_half_loss']:.2f}"
    assert result.findings[-1].startswith(f"Loss on repeated random tokens: {first} nats on the first half")


def test_composition_scores_count_pairs_above_chance_by_mode(local_runs, trained):
    _, result, ctx = local_runs.run("composition_scores", {"model": final(trained[2], local_runs)})
    check(result, ctx)
    strict = ", ".join(f"{m} {int(result.metrics[f'n_{m.lower()}_above_chance'])}" for m in "QKV")
    assert strict in result.findings[0]
    one_layer = local_runs.run("composition_scores", {"model": final(trained[1], local_runs)})[1]
    assert one_layer.findings == [
        "A 1-layer model has no head pairs that can compose (a reader must sit in a later layer)."
    ]


def test_head_ablation_names_the_most_important_head_and_its_cost(local_runs, trained):
    _, result, ctx = local_runs.run("head_ablation", {"model": final(trained[2], local_runs)})
    check(result, ctx)
    top = result.summary["ranking"][0]
    assert f"L{top['layer']}H{top['head']}" in result.findings[0]
    assert f"by {top['loss_increase']:.3f} nats" in result.findings[0]


def test_checkpoint_pca_states_change_points_and_the_icl_jump(local_runs, trained):
    _, result, ctx = local_runs.run("checkpoint_pca", {"run": trained[2]})
    check(result, ctx)
    assert result.headline == "trajectory"
    assert f"ending at step {int(result.metrics['largest_icl_change_step'])}" in result.findings[1]


def test_depth_comparison_states_each_depth_and_keeps_each_as_a_part(local_runs, trained):
    _, result, ctx = local_runs.run("attention_depth_comparison", {"runs": [trained[1], trained[2]]})
    check(result, ctx)
    assert result.headline == "comparison_chart"
    assert re.match(r"\d of 2 depths form induction heads", result.findings[0])
    assert "1 layer" in result.findings[0] and "2 layers" in result.findings[0]
    assert [part["label"] for part in ctx.parts] == ["1 layer", "2 layers"]
    assert result.metrics["L2_n_induction_heads"] == ctx.parts[1]["metrics"]["n_induction_heads"]
    assert ctx.artifacts["L2-head_scores"].meta["part"] == "L2"
    assert all(part["findings"] for part in ctx.parts)


def test_every_kind_has_a_findings_function_beside_run():
    for module in KIND_MODULES:
        assert callable(getattr(module, "findings", None)), module.__name__
