"""Catalogue hypothesis #6 on a CPU: two seeds of the project's IOI model replicate each other's circuit, and a
model that does not do IOI does not replicate it.

The default spec (`ioi_replication` with no params: two seeds of the `ioi` kind's IOI_TRAINING on ioi_prompts,
compared on 256 prompts with the training names, top 5 heads) on a test seed: both models do the task (logit
difference >= 2), both have name movers, and replication_score >= 0.5 (the criterion proposed for the
catalogue's spec). Against the same reference, the untrained model of the same shape scores below 0.1 (it has
no name mover: its score is 0 by the rule).

Tuning seeds: 1 (run seed 1 trains seeds 1 and 2; docs/science.md, "IOI replication"). TEST_SEEDS are to be
drawn with `secrets.randbelow(10**9)` once the IOI recipe (`kinds/ioi.py`, IOI_TRAINING) is fixed; until then
the test is skipped. With the first working recipe (3000 steps of batch 128) one seed trains in some 8 minutes
on a loaded core: two seeds are well over the suite's 3-minute budget for a slow test.
"""

from __future__ import annotations

import pytest

from experiments.engine.kinds.ioi_replication import IOI_TRAINING

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skip(reason="the IOI recipe (kinds/ioi.py IOI_TRAINING) is not fixed yet; no test seeds drawn"),
]

TEST_SEEDS: tuple[int, ...] = ()


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_two_seeds_of_the_ioi_model_replicate_each_others_circuit_and_an_untrained_model_does_not(local_runs, seed):
    run_id, result, _ = local_runs.run("ioi_replication", {}, seed=seed)
    metrics = result.metrics
    for i in (0, 1):
        assert metrics[f"model{i}_logit_diff"] >= 2.0, result.findings
        assert metrics[f"model{i}_n_name_movers"] >= 1, result.findings
    assert metrics["replication_score"] >= 0.5, result.findings

    reference = {"source": "run", "run": run_id, "artifact": f"model0-checkpoint-{IOI_TRAINING.steps}"}
    untrained = {"source": "native", "config": IOI_TRAINING.model.model_dump()}
    control = local_runs.run("ioi_replication", {"models": [reference, untrained]}, seed=seed)[1]
    assert control.metrics["replication_score"] < 0.1, control.findings
