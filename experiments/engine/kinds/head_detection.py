"""Find previous-token, duplicate-token and induction heads.

Scores every head on repeated random tokens (BOS, r_1..r_h, r_1..r_h): the
mean attention on the previous token, on the earlier copy of the current token
(duplicate), and on the token after that copy (induction), as in Olsson et al.
2022 and TransformerLens' head detector. A head is classified as a type when
its score reaches 0.4 (see `experiments.engine.analysis.heads.THRESHOLDS`).
Also reports the loss on each half of the repeated tokens: a model with
working induction heads predicts the second half far better than the first.
"""

from __future__ import annotations

from pydantic import Field

from experiments.engine.analysis.heads import THRESHOLDS, head_scores
from experiments.engine.datasets import RepeatedRandomTokens
from experiments.engine.kinds._inputs import data_fits_model, repeated_tokens_for
from experiments.engine.models import ArtifactResolver, ModelRef, load_model
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.training import repeated_token_losses

KEY = "head_detection"
TITLE = "Detect induction, previous-token and duplicate-token heads"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 1800
TIME_LIMIT = 1860
METRICS = {
    "max_induction_score": "Highest induction score of any head (0..1).",
    "n_induction_heads": "Heads with induction score >= 0.4.",
    "max_previous_token_score": "Highest previous-token score of any head (0..1).",
    "n_previous_token_heads": "Heads with previous-token score >= 0.4.",
    "max_duplicate_token_score": "Highest duplicate-token score of any head (0..1).",
    "n_duplicate_token_heads": "Heads with duplicate-token score >= 0.4.",
    "repeated_first_half_loss": "Loss on the first half of the repeated tokens.",
    "repeated_second_half_loss": "Loss on the second half: far lower when induction works.",
}


class Params(KindParams):
    model: ModelRef = Field(description="The model to examine.")
    data: RepeatedRandomTokens = Field(RepeatedRandomTokens(n_sequences=64, half_length=31))


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the sequences fit the model's context."""
    return data_fits_model(params.data, params.model, runs)


def run(params: Params, ctx) -> KindResult:
    ctx.progress(0.05, "loading the model")
    model = load_model(params.model, ctx)
    tokens = repeated_tokens_for(model, params.data, ctx.device)
    ctx.check_cancelled()
    ctx.progress(0.4, "scoring heads")
    scores = head_scores(model, tokens)
    first, second = repeated_token_losses(model, tokens)
    by_type = scores.by_type()
    ctx.save_artifact("head_scores", {name: s.contiguous() for name, s in by_type.items()})
    ctx.save_artifact("head_scores_heatmap", head_heatmaps(by_type, title="Head scores on repeated random tokens"))
    heads = [
        {
            "layer": layer,
            "head": head,
            **{name: round(float(s[layer, head]), 4) for name, s in by_type.items()},
            "types": scores.types_of(layer, head),
        }
        for layer in range(scores.induction.shape[0])
        for head in range(scores.induction.shape[1])
    ]
    metrics = {"repeated_first_half_loss": first, "repeated_second_half_loss": second}
    for name, s in by_type.items():
        metrics[f"max_{name}_score"] = float(s.max())
        metrics[f"n_{name}_heads"] = len(scores.heads_of_type(name))
    return KindResult(metrics=metrics, summary={"heads": heads, "thresholds": THRESHOLDS})
