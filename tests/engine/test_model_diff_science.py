"""model_diff must show where an induction circuit changes a model: the tokens whose loss falls most between a
checkpoint before the circuit forms and the last one are second-half repeated tokens (the ones only in-context
copying predicts), on seeds nobody tuned with.

Olsson et al. 2022 ("In-context Learning and Induction Heads"): when the induction heads of a 2-layer
attention-only model form, its loss on repeated text falls and its loss elsewhere barely moves.

Tuned with seed 0 only (the default 64 repeated sequences of 31 tokens, top 100, the "before" checkpoint the last
one at or before step 500: the default training's warm-up ends at 300 and induction heads formed at 1122 on seed 0
and after 700 on every test seed of the induction science tests). TEST_SEEDS were drawn once with
`secrets.randbelow(10**9)` after those settings were fixed; docs/science.md lists what each gave.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

pytestmark = pytest.mark.slow

TEST_SEEDS = (804623674, 1844788, 806248111, 228222570, 268351047)
BEFORE_BY_STEP = 500


def _train(job: tuple[int, str]):
    """Train the default model in a worker process (one thread, so two run side by side on two cores)."""
    from pathlib import Path

    from tests.engine.conftest import LocalRuns

    torch.set_num_threads(1)
    seed, root = job
    _, _, ctx = LocalRuns(Path(root) / str(seed)).run("train_transformer", {}, seed=seed)
    return seed, ctx


@pytest.fixture(scope="module")
def trained(local_runs, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("diff-science"))
    with ProcessPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(_train, [(seed, root) for seed in TEST_SEEDS]))
    return {seed: local_runs.adopt(ctx) for seed, ctx in done}


@pytest.fixture(scope="module")
def diffs(local_runs, trained):
    """model_diff of the last checkpoint at or before step 500 against the last one (step 3000), per seed."""
    results = {}
    for seed, run_id in trained.items():
        saved = local_runs.checkpoints(run_id)
        before = [name for step, name in saved if step <= BEFORE_BY_STEP][-1]
        models = [{"source": "run", "run": run_id, "artifact": name} for name in (before, saved[-1][1])]
        results[seed] = local_runs.run("model_diff", {"models": models}, seed=seed)[1]
    return results


@pytest.fixture(scope="module")
def series(local_runs, trained):
    return {seed: local_runs.run("model_diff", {"checkpoints_of": run}, seed=seed)[1] for seed, run in trained.items()}


def test_the_tokens_whose_loss_drops_most_once_induction_forms_are_second_half_repeated_tokens(diffs):
    shares = {seed: round(result.metrics["top_drop_second_half_share"], 3) for seed, result in diffs.items()}
    assert all(share >= 0.8 for share in shares.values()), shares


def test_the_loss_falls_on_the_second_half_and_barely_moves_on_the_first(diffs):
    for seed, result in diffs.items():
        m = result.metrics
        second = m["second_half_loss_last"] - m["second_half_loss_first"]
        first = m["first_half_loss_last"] - m["first_half_loss_first"]
        assert second < -2.0 and abs(first) < 0.3, (seed, second, first)


def test_the_largest_change_between_checkpoints_moves_the_second_half_most(series):
    for seed, result in series.items():
        change = result.summary["largest_change"]["class_change"]
        assert min(change, key=change.get) == "second_half" and change["second_half"] < 0, (seed, change)
