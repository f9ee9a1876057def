"""Research claims of grokking_modular_addition at its default (`cpu` preset), on seeds nobody tuned with.

Power et al. 2022 ("Grokking") and Nanda et al. 2023 ("Progress measures for grokking via mechanistic
interpretability"): a small transformer trained on modular addition with weight decay first memorises its
training pairs and generalises much later; the model it ends with computes the answer with a few Fourier
frequencies (its embedding is sparse in the Fourier basis); and between memorisation and generalisation the
generalising circuit forms while the train loss stays low, which shows as a rising excluded loss (the loss without
the key frequencies) and a falling restricted loss (with only them).

Tuning seeds (used to choose the preset): 1, 2, 3 (see docs/science.md). TEST_SEEDS were drawn once, at random,
from 0..10^9 (`secrets.randbelow`) after the preset was settled, and were never used to tune anything.
Four runs, two at a time with one thread each: about 3 minutes on two free cores, 8 on a busy machine.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

pytestmark = pytest.mark.slow

TEST_SEEDS = (694339240, 8766327, 283018582, 735332641)


def _grok(job: tuple[int, str]):
    """Run the kind at its defaults in a worker process (one thread each, so two run side by side)."""
    from pathlib import Path

    from tests.engine.conftest import LocalRuns

    torch.set_num_threads(1)
    seed, root = job
    _, result, _ = LocalRuns(Path(root) / str(seed)).run("grokking_modular_addition", {}, seed=seed)
    return seed, result.metrics, result.summary


@pytest.fixture(scope="module")
def grokked(tmp_path_factory) -> dict[int, tuple[dict, dict]]:
    root = str(tmp_path_factory.mktemp("grokking"))
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = {seed: (metrics, summary) for seed, metrics, summary in pool.map(_grok, [(s, root) for s in TEST_SEEDS])}
    for seed, (metrics, summary) in runs.items():  # shown with -s: the numbers docs/science.md lists
        shown = ("step_train_99", "step_test_99", "grokking_delay_ratio", "test_accuracy", "top_frequencies_norm_share",
                 "memorised_top_frequencies_norm_share", "excluded_loss_at_memorisation", "max_excluded_loss",
                 "max_excluded_loss_step", "train_loss_at_max_excluded", "circuit_formation_end_step")  # fmt: skip
        print(seed, {name: metrics.get(name) for name in shown}, summary["key_frequencies"])
    return runs


def test_the_model_memorises_first_and_generalises_at_least_3x_later(grokked):
    for seed, (metrics, _) in grokked.items():
        assert metrics["step_train_99"] is not None, seed
        assert metrics["step_test_99"] is not None, (seed, metrics["test_accuracy"])
        assert metrics["grokking_delay_ratio"] >= 3, (seed, metrics["step_train_99"], metrics["step_test_99"])
        assert metrics["test_accuracy"] >= 0.99, seed


def test_the_grokked_embedding_is_sparse_in_the_fourier_basis_and_the_memorising_one_is_not(grokked):
    for seed, (metrics, summary) in grokked.items():
        assert metrics["top_frequencies_norm_share"] >= 0.7, (seed, summary["frequency_norms"])
        assert metrics["memorised_top_frequencies_norm_share"] <= 0.4, seed
        assert 1 <= metrics["n_key_frequencies"] <= 6, (seed, summary["key_frequencies"])


def test_the_excluded_loss_rises_while_the_train_loss_stays_low(grokked):
    """Circuit formation: after memorisation, the logits without the key frequencies fit the training pairs
    worse and worse while the train loss stays near zero (Nanda et al.'s Figure 7)."""
    for seed, (metrics, _) in grokked.items():
        assert metrics["max_excluded_loss"] >= metrics["excluded_loss_at_memorisation"] + 2.0, seed
        assert metrics["max_excluded_loss_step"] > metrics["step_train_99"], seed
        assert metrics["train_loss_at_max_excluded"] <= 0.05, seed
        assert metrics["restricted_loss"] <= 0.05, seed


def test_the_phases_come_in_order(grokked):
    for seed, (metrics, _) in grokked.items():
        memorised, formed, cleaned = (
            metrics["memorisation_end_step"], metrics["circuit_formation_end_step"], metrics["cleanup_end_step"]
        )  # fmt: skip
        assert memorised < formed <= cleaned, (seed, memorised, formed, cleaned)
