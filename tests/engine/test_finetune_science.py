"""finetune_comparison's claims (catalogue idea #9: fine-tuning re-weights circuits that exist rather than building
new ones), at the kind's defaults, on seeds nobody tuned with.

Per seed: the default run (train the 2-layer induction model, 3000 steps; fine-tune it on markov_text, 1000 steps)
and a second fine-tuning of the same base model on text whose repeats are short (induction_training with copied
segments of 2-6 tokens instead of 8-24).

- Fine-tuning on text with short repeats keeps the induction heads: every head that was an induction head still
  is one and none is lost, the best induction score stays >= 0.5, most of them (at least half) are classified
  kept, and no head is new. On the tuning seeds 3 of 4 (seeds 2 and 3) and 4 of 4 (seed 1, at a higher rate) were
  kept; the rest were re-weighted because their importance moved by more than half, so "every one kept" would be
  a claim about the threshold rather than about fine-tuning.
- Fine-tuning on the Markov text (statistics the model never saw, with repeated phrases) keeps an induction head
  >= 0.5, loses none of its induction heads, and builds few new heads: new_circuit_fraction <= 0.25. Here the
  induction heads are re-weighted, not kept: their patterns move (0.1-0.3 bits) and their scores drop by 0.1-0.2.

TUNING_SEEDS chose the default data, rate and steps and the classification thresholds; TEST_SEEDS were drawn once
with `secrets.randbelow(10**9)` after that and never used to tune. Each claim asks for 4 of 5 seeds;
docs/science.md ("Fine-tuning") has what each seed gave: every claim held on all five. The five seeds run two at a
time (one thread each): about 5 minutes on two idle cores, 7-9 minutes on the shared, loaded machine they were
first run on.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

pytestmark = pytest.mark.slow

TUNING_SEEDS = (1, 2, 3)
TEST_SEEDS = (473685753, 560754953, 885772367, 836003487, 859010463)
SHORT_REPEATS = {"source": "induction_training", "min_segment": 2, "max_segment": 6}


def _fine_tune(seed: int) -> tuple[int, dict, dict]:
    """Both fine-tunings of one seed's base model, in a worker process with one thread."""
    import tempfile
    from pathlib import Path

    from tests.engine.conftest import LocalRuns

    torch.set_num_threads(1)
    runs = LocalRuns(Path(tempfile.mkdtemp(prefix=f"finetune-{seed}-")))
    run_id, markov, _ = runs.run("finetune_comparison", {}, seed=seed)
    base = {"source": "run", "run": run_id, "artifact": "base-checkpoint-3000"}
    _, repeats, _ = runs.run("finetune_comparison", {"base": base, "finetune_data": SHORT_REPEATS}, seed=seed)
    summary = lambda r: {"metrics": r.metrics, "heads": r.summary["heads"], "findings": r.findings}  # noqa: E731
    return seed, summary(markov), summary(repeats)


@pytest.fixture(scope="module")
def results() -> dict[int, tuple[dict, dict]]:
    with ProcessPoolExecutor(max_workers=2) as pool:
        return {seed: (markov, repeats) for seed, markov, repeats in pool.map(_fine_tune, TEST_SEEDS)}


def _induction_heads(result: dict) -> list[dict]:
    return [h for h in result["heads"] if "induction" in h["types_before"]]


def _table(results, which: int) -> dict:
    return {
        seed: {
            "induction": [
                (h["induction_before"], h["induction_after"], h["class"]) for h in _induction_heads(r[which])
            ],
            "new_circuit_fraction": r[which]["metrics"]["new_circuit_fraction"],
        }
        for seed, r in results.items()
    }


def test_fine_tuning_on_text_with_repeats_keeps_the_induction_heads_in_at_least_4_of_5_seeds(results):
    held = []
    for _, repeats in results.values():
        heads = _induction_heads(repeats)
        held.append(
            bool(heads)
            and repeats["metrics"]["induction_score_after"] >= 0.5
            and all("induction" in h["types_after"] and h["class"] != "lost" for h in heads)
            and sum(h["class"] == "kept" for h in heads) >= len(heads) / 2
            and repeats["metrics"]["n_new_heads"] == 0
        )
    assert sum(held) >= 4, _table(results, 1)


def test_fine_tuning_on_markov_text_builds_few_new_heads_and_loses_no_induction_head(results):
    held = []
    for markov, _ in results.values():
        heads = _induction_heads(markov)
        held.append(
            bool(heads)
            and markov["metrics"]["induction_score_after"] >= 0.5
            and not any(h["class"] == "lost" for h in heads)
            and markov["metrics"]["new_circuit_fraction"] <= 0.25
        )
    assert sum(held) >= 4, _table(results, 0)


def test_fine_tuning_costs_loss_on_the_original_data_and_gains_on_the_new(results):
    """What the classification is about happened: the model learned the new data, at some cost on the old."""
    for seed, (markov, _) in results.items():
        metrics = markov["metrics"]
        assert metrics["new_data_loss_after"] < metrics["new_data_loss_before"] - 0.2, seed
        assert metrics["original_loss_after"] > metrics["original_loss_before"], seed
