"""Tiny language models trained on synthetic dialogues with a built-in effect, for the behavioural kinds' tests.

`train_dialogue_model(data, seed=..., runs=local_runs)` trains the default dialogues model with `RECIPE` through
`train_transformer` (in this process, one thread) and numbers the run in `runs`, so a kind's params can name its
checkpoint as a run model: `{"source": "run", "run": model.run_id, "artifact": model.artifact}`. Trained models are
kept for the session: a second call with the same data, seed and steps only numbers the run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from experiments.engine.evals.dialogues import Dialogues
from experiments.engine.runtime import RunContext
from tests.engine.conftest import LocalRuns

# The recipe the Dialogues docstring reports: steps, batch, peak learning rate and warm-up of train_transformer.
RECIPE = {"steps": 1500, "batch_size": 32, "lr": 3e-3, "warmup_steps": 50, "weight_decay": 0.01}


@dataclass
class DialogueModel:
    run_id: int  # the training run's number in the LocalRuns it was adopted into
    artifact: str  # its last checkpoint's name
    path: Path  # that checkpoint's file
    words: list[str]  # the vocabulary the checkpoint's meta carries
    metrics: dict

    @property
    def model_ref(self) -> dict:
        return {"source": "run", "run": self.run_id, "artifact": self.artifact}


_trained: dict[tuple[str, int, int], tuple[RunContext, dict]] = {}


def train_dialogue_model(
    data: Dialogues, *, seed: int, runs: LocalRuns, steps: int | None = None, root: Path | None = None
) -> DialogueModel:
    """Train (or reuse) the default dialogues model on `data` from `seed` and number its run in `runs`."""
    steps = steps or RECIPE["steps"]
    key = (data.model_dump_json(), seed, steps)
    if key not in _trained:
        params = {**RECIPE, "steps": steps, "data": data.model_dump(), "n_checkpoints": 1, "eval_every": steps}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            trainer = LocalRuns(root or runs.root / f"dialogues-{len(_trained)}")
            _, result, ctx = trainer.run("train_transformer", params, seed=seed)
        finally:
            torch.set_num_threads(threads)
        _trained[key] = (ctx, result.metrics)
    ctx, metrics = _trained[key]
    artifact = f"checkpoint-{steps}"
    record = ctx.artifacts[artifact]
    return DialogueModel(
        run_id=runs.adopt(ctx), artifact=artifact, path=ctx.artifact_dir / record.path,
        words=record.meta["words"], metrics=metrics,
    )  # fmt: skip
