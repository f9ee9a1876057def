"""The default dialogues model learns each behaviour's dialogues with the recipe `tests/engine/dialogue_models.RECIPE`,
with the effect built in and without it, on seeds nobody tuned with: its top-1 answers reproduce at least 95% of the
training answers (the known answer the behavioural kinds' tests then recover), and so does the saved checkpoint.

Tuning seeds: 1 to 4 (the model width, batch and warm-up were chosen with them), and a first draw of test seeds
(225975658, 251744494, 393387864): with 1000 steps one of them stopped at 96% on truthfulness, so the recipe took
1500. TEST_SEEDS were drawn afresh with `secrets.randbelow(10**9)` after that; each variant trains on one of them
(all three are measured in the Dialogues docstring). Each training takes about 25 s of one core.
"""

from __future__ import annotations

import pytest

from experiments.engine.evals.dialogues import Dialogues, dialogue_accuracy
from experiments.engine.models import load_checkpoint
from tests.engine.dialogue_models import train_dialogue_model

pytestmark = pytest.mark.slow

TEST_SEEDS = (396791442, 609968897, 46988004)
VARIANTS = {
    "truthfulness": Dialogues(behaviour="truthfulness"),
    "truthfulness, no effect": Dialogues(
        behaviour="truthfulness", flip_rates={"truthful": 0.05, "friendly and truthful": 0.05}
    ),
    "conformity": Dialogues(behaviour="conformity"),
    "conformity, no effect": Dialogues(behaviour="conformity", conformity_rate=0),
    "refusal": Dialogues(behaviour="refusal"),
    "refusal, none refused": Dialogues(behaviour="refusal", refusal_rate=0),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_dialogues_model_reproduces_its_training_answers(name, local_runs):
    seed = TEST_SEEDS[list(VARIANTS).index(name) % len(TEST_SEEDS)]
    trained = train_dialogue_model(VARIANTS[name], seed=seed, runs=local_runs)
    assert trained.metrics["dialogue_accuracy"] >= 0.95
    # The saved checkpoint, loaded as a kind loads a run model, answers the same.
    model, _ = load_checkpoint(local_runs.artifact_path(trained.run_id, trained.artifact))
    assert dialogue_accuracy(model, VARIANTS[name], device="cpu") == pytest.approx(
        trained.metrics["dialogue_accuracy"], abs=0.01
    )
