"""Find induction, previous-token and duplicate-token heads, and in-context copying circuits whatever their offsets.

Scores every head on repeated random tokens (BOS, r_1..r_h, r_1..r_h), as in
Olsson et al. 2022 and TransformerLens' head detector: the mean attention on
the previous token, on the earlier copy of the current token (duplicate), and
on the token after that copy (induction). Beside those fixed offsets, two
generalised families (see `experiments.engine.analysis.heads`):

- copying: the share of repeated-half queries where what the head reads from
  the earlier copy, read out through the unembedding (direct logit
  attribution), raises the correct next token above every other token of the
  sequence, with the offset of the keys that push it (1 for the textbook
  induction head), and the same for each layer's heads together;
- look-back: attention to q-k for k up to 4, with that k.

A head gets a type or family when its score reaches 0.4. The summary names
the circuit: its copying heads and look-back heads with their offsets. Some
small models copy in context with a shifted circuit (look-back heads at k = 2
and 3, a copying head landing at offset 3): its induction score is near 0,
its copying score is not. Also reports the loss on each half of the repeated
tokens: a model that copies in context predicts the second half far better.

How far it holds (docs/science.md, five seeds not used for tuning): default
2-layer models scored >= 0.5 as induction heads in at least 4 of 5 seeds with
vocabularies of 64 and 48 and >= 0.5 as copying heads with 96; 1-layer models
scored below 0.2 on both; the shifted circuit scored near 0 as induction and
0.36-0.41 per head (0.51 for its layer) as copying, at offset 3.
"""

from __future__ import annotations

from pydantic import Field

from experiments.engine.analysis.heads import FAMILIES, THRESHOLDS, head_scores
from experiments.engine.datasets import RepeatedRandomTokens
from experiments.engine.kinds._inputs import data_fits_model, repeated_tokens_for
from experiments.engine.models import ArtifactResolver, ModelRef, load_model
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.training import repeated_token_losses
from experiments.engine.wording import count, head_name, heads_text

KEY = "head_detection"
TITLE = "Detect induction, previous-token, duplicate-token and copying heads"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 1800
TIME_LIMIT = 1860
_MEANINGS = {
    "induction": "induction score (attention to the token after the earlier copy)",
    "previous_token": "previous-token score",
    "duplicate_token": "duplicate-token score",
    "copying": "copying score (share of queries where what it reads from the earlier copy names the answer)",
    "look_back": "look-back score (attention to q-k, k <= 4)",
}
METRICS = {
    **{f"max_{name}_score": f"Highest {meaning} of any head (0..1)." for name, meaning in _MEANINGS.items()},
    **{f"n_{name}_heads": f"Heads with {name.replace('_', '-')} score >= 0.4." for name in _MEANINGS},
    "copying_offset": "Where the keys that push the answer sit for the strongest copying head, relative to the "
    "earlier copy of the current token (1 = textbook induction).",
    "look_back_offset": "k of the strongest look-back head (1 = previous token).",
    "max_layer_copying_score": "Copying score of the best layer's heads taken together (a circuit spread over "
    "several heads shows here).",
    "repeated_first_half_loss": "Loss on the first half of the repeated tokens.",
    "repeated_second_half_loss": "Loss on the second half: far lower when the model copies in context.",
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
    ctx.save_artifact("head_scores", scores.tensors())
    ctx.save_artifact("head_scores_heatmap", head_heatmaps(by_type, title="Head scores on repeated random tokens"))
    n_layers, n_heads = scores.shape
    heads = [scores.head_row(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    metrics = {"repeated_first_half_loss": first, "repeated_second_half_loss": second}
    for name, s in by_type.items():
        metrics[f"max_{name}_score"] = float(s.max())
        metrics[f"n_{name}_heads"] = len(scores.heads_of_type(name))
    circuit = scores.circuit()
    if circuit["layer_copying"]:
        metrics["max_layer_copying_score"] = max(circuit["layer_copying"])
    for family in FAMILIES:
        if circuit[family]:
            metrics[f"{family}_offset"] = circuit[family][0]["offset"]
    return KindResult(
        findings=findings(scores, circuit, metrics),
        metrics=metrics,
        headline="head_scores_heatmap",
        summary={"heads": heads, "circuit": circuit, "thresholds": THRESHOLDS},
    )


def findings(scores, circuit: dict, metrics: dict) -> list[str]:
    n_layers, n_heads = scores.shape
    lines = []
    induction = scores.heads_of_type("induction")
    best = metrics["max_induction_score"]
    if induction:
        lines.append(
            f"{count(len(induction), 'induction head')} of {n_layers * n_heads} (score >= {THRESHOLDS['induction']}): "
            f"{heads_text(induction)}; the best scores {best:.2f}."
        )
    else:
        lines.append(
            f"No induction head: the best induction score is {best:.2f} (a head needs {THRESHOLDS['induction']})."
        )
    previous = scores.heads_of_type("previous_token")
    if previous:
        lines.append(f"Previous-token heads: {heads_text(previous)} (best {metrics['max_previous_token_score']:.2f}).")
    copying = circuit["copying"]
    if copying and not induction:
        top = copying[0]
        lines.append(
            f"It copies in context with a shifted circuit: copying head {head_name(top['layer'], top['head'])} "
            f"scores {top['score']:.2f} at offset {top['offset']} (1 is the textbook induction head)."
        )
    elif copying:
        lines.append(
            f"Copying heads (what they read names the answer): {heads_text((h['layer'], h['head']) for h in copying)}."
        )
    elif metrics.get("max_layer_copying_score", 0) >= THRESHOLDS["copying"]:
        lines.append(
            f"No single head copies, but a layer's heads together do (copying score "
            f"{metrics['max_layer_copying_score']:.2f})."
        )
    first, second = metrics["repeated_first_half_loss"], metrics["repeated_second_half_loss"]
    lines.append(
        f"Loss on repeated random tokens: {first:.2f} nats on the first half, {second:.2f} on the second"
        + (" (it predicts the repeat)." if first - second >= 0.5 else " (it barely uses the repeat).")
    )
    return lines
