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

Two more families are read from the weights alone (see
`experiments.engine.analysis.ov_circuits`):

- OV copying (Elhage et al. 2021): the eigenvalue positivity of the head's
  full OV circuit W_E W_V W_O W_U, sum(λ) / sum(|λ|) in [-1, 1]: near 1 when
  whatever token the head attends to it raises, near -1 when it suppresses it,
  near 0 for a random circuit. Exact over the whole vocabulary. Named
  `ov_copying` to tell it from the in-context `copying` family above.
- successor (Gould et al. 2023): the share of one-token ordinal tokens
  (numerals 1-20, number words, days, months, letters...) whose top OV output
  among the ordinal tokens is their successor. Only a pretrained tokenizer
  gives tokens an ordinal meaning: for native models and checkpoints trained
  here it is reported as not applicable, with no score.

A head gets a type or family when its score reaches 0.4 (OV copying: 0.7,
successor: 0.5). The summary names the circuit: its copying heads and
look-back heads with their offsets. Some
small models copy in context with a shifted circuit (look-back heads at k = 2
and 3, a copying head landing at offset 3): its induction score is near 0,
its copying score is not. Also reports the loss on each half of the repeated
tokens: a model that copies in context predicts the second half far better.

How far it holds (docs/science.md, five seeds not used for tuning): default
2-layer models scored >= 0.5 as induction heads in at least 4 of 5 seeds with
vocabularies of 64 and 48 and >= 0.5 as copying heads with 96; 1-layer models
scored below 0.2 on both; the shifted circuit scored near 0 as induction and
0.36-0.41 per head (0.51 for its layer) as copying, at offset 3. OV copying:
on the five test seeds' default 2-layer models every induction head scored
0.88-0.98 and above every other head; layer-0 heads lean positive too
(0.34-0.83, some past 0.7), so OV copying alone does not find induction heads.
Successor heads are untested on a real pretrained model here.

IOI roles, where the data allow: with `ioi` (IOI prompts, for a model trained
on ioi_prompts or a pretrained one whose tokenizer has one-token names), each
head also gets the roles of the `ioi` kind's analysis (name mover, negative
name mover, S-inhibition, induction, duplicate-token, previous-token on the
IOI prompts; its rules are in `experiments.engine.analysis.ioi`).
"""

from __future__ import annotations

from pydantic import Field

from experiments.engine.analysis.heads import FAMILIES, THRESHOLDS, head_scores
from experiments.engine.analysis.ioi import ROLES, analyse_ioi
from experiments.engine.analysis.ov_circuits import OV_THRESHOLDS, ov_copying_scores, successor_scores
from experiments.engine.datasets import RepeatedRandomTokens
from experiments.engine.ioi import IOIPrompts, ioi_batch
from experiments.engine.kinds._inputs import data_fits_model, repeated_tokens_for
from experiments.engine.kinds.ioi import ROLE_LABELS, ioi_model_problem
from experiments.engine.models import ArtifactResolver, ModelRef, load_model
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.training import repeated_token_losses
from experiments.engine.wording import count, head_name, heads_text

KEY = "head_detection"
TITLE = "Detect induction, previous-token, duplicate-token and copying heads"
DEVICE = "cpu"
VERSION = "3"  # 2: the OV-copying and successor families; 3: IOI roles
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
    "max_ov_copying_score": "Highest OV-copying score (eigenvalue positivity of W_E W_V W_O W_U, -1..1) of any head.",
    "min_ov_copying_score": "Lowest OV-copying score of any head (near -1: a head that suppresses what it reads).",
    "n_ov_copying_heads": f"Heads with OV-copying score >= {OV_THRESHOLDS['ov_copying']}.",
    "max_successor_score": "Highest successor score of any head (0..1): the share of one-token ordinal tokens whose "
    "top OV output among them is their successor. Absent where not applicable (no tokenizer with ordinal tokens).",
    "n_successor_heads": f"Heads with successor score >= {OV_THRESHOLDS['successor']} (absent where not applicable).",
    **{
        f"n_ioi_{role}_heads": f"With `ioi` prompts: heads the IOI analysis names {role.replace('_', '-')} candidates."
        for role in ROLES
    },
    "ioi_logit_difference": "With `ioi` prompts: the mean logit difference IO − S at END.",
    "repeated_first_half_loss": "Loss on the first half of the repeated tokens.",
    "repeated_second_half_loss": "Loss on the second half: far lower when the model copies in context.",
}


class Params(KindParams):
    model: ModelRef = Field(description="The model to examine.")
    data: RepeatedRandomTokens = Field(RepeatedRandomTokens(n_sequences=64, half_length=31))
    ioi: IOIPrompts | None = Field(
        None,
        description="IOI prompts to name the IOI roles as well (a model trained on ioi_prompts, or a pretrained "
        "one whose tokenizer writes names as one token).",
    )


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the sequences fit the model's context, and the IOI prompts, if asked for, fit
    the model."""
    problems = data_fits_model(params.data, params.model, runs)
    problem = ioi_model_problem(params.model, params.ioi, runs) if params.ioi is not None else None
    return problems | ({"ioi": problem} if problem else {})


def run(params: Params, ctx) -> KindResult:
    ctx.progress(0.05, "loading the model")
    model = load_model(params.model, ctx)
    tokens = repeated_tokens_for(model, params.data, ctx.device)
    ctx.check_cancelled()
    ctx.progress(0.4, "scoring heads")
    scores = head_scores(model, tokens)
    first, second = repeated_token_losses(model, tokens)
    ctx.check_cancelled()
    ctx.progress(0.7, "reading the OV circuits")
    ov = _ov_families(model)
    by_type = scores.by_type()
    ctx.save_artifact("head_scores", scores.tensors() | {name: s.contiguous() for name, s in ov["scores"].items()})
    title = "Head scores on repeated random tokens; OV copying and successor from the weights"
    ctx.save_artifact("head_scores_heatmap", head_heatmaps(by_type | ov["scores"], title=title, signed=["ov_copying"]))
    n_layers, n_heads = scores.shape
    heads = [_head_row(scores, ov["scores"], layer, head) for layer in range(n_layers) for head in range(n_heads)]
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
    ioi = None
    if params.ioi is not None:
        ctx.progress(0.8, "naming the IOI roles")
        ioi = analyse_ioi(model.eval(), ioi_batch(params.ioi, model, device=ctx.device))
        for row in heads:
            row["ioi_roles"] = ioi.roles_of(row["layer"], row["head"])
        for role in ROLES:
            metrics[f"n_ioi_{role}_heads"] = len(ioi.roles[role])
        metrics["ioi_logit_difference"] = ioi.logit_diff
    ov_copying = ov["scores"]["ov_copying"]
    metrics["max_ov_copying_score"] = float(ov_copying.max())
    metrics["min_ov_copying_score"] = float(ov_copying.min())
    metrics["n_ov_copying_heads"] = len(ov["heads"]["ov_copying"])
    if "successor" in ov["scores"]:
        metrics["max_successor_score"] = float(ov["scores"]["successor"].max())
        metrics["n_successor_heads"] = len(ov["heads"]["successor"])
    return KindResult(
        findings=findings(scores, circuit, metrics, ov) + (ioi_findings(ioi) if ioi is not None else []),
        metrics=metrics,
        headline="head_scores_heatmap",
        summary={
            "heads": heads,
            "circuit": circuit,
            "ov_families": {"heads": ov["heads"], "successor": ov["successor"]},
            "thresholds": THRESHOLDS | OV_THRESHOLDS,
            **({"ioi_roles": {role: [list(h) for h in ioi.roles[role]] for role in ROLES}} if ioi is not None else {}),
        },
    )


def ioi_findings(ioi) -> list[str]:
    named = [f"{ROLE_LABELS[role]}: {heads_text(ioi.roles[role])}" for role in ROLES if ioi.roles[role]]
    return [
        f"On IOI prompts (logit difference {ioi.logit_diff:.2f}), "
        + ("; ".join(named) + "." if named else "no head meets an IOI role's rule.")
    ]


def _ov_families(model) -> dict:
    """The weight-based families: {"scores": {family: [layer, head]}, "heads": {family: [rows, best first]},
    "successor": whether it applies, on how many ordinal pairs of which sequences, or why not}."""
    panels = {"ov_copying": ov_copying_scores(model)}
    successor = successor_scores(model)
    if successor.scores is not None:
        panels["successor"] = successor.scores
    heads = {}
    for family in ("ov_copying", "successor"):
        values = panels.get(family)
        typed = [] if values is None else (values >= OV_THRESHOLDS[family]).nonzero().tolist()
        rows = [{"layer": layer, "head": head, "score": round(float(values[layer, head]), 4)} for layer, head in typed]
        heads[family] = sorted(rows, key=lambda row: -row["score"])
    about = {"applicable": successor.scores is not None, "why_not": successor.why_not,
             "n_pairs": successor.n_pairs, "sequences": list(successor.sequences)}  # fmt: skip
    return {"scores": panels, "heads": heads, "successor": about}


def _head_row(scores, ov_scores: dict, layer: int, head: int) -> dict:
    """A head's row of the summary: its repeated-token scores and types, and its OV-family scores and types."""
    row = scores.head_row(layer, head)
    for family, values in ov_scores.items():
        row[family] = round(float(values[layer, head]), 4)
        if values[layer, head] >= OV_THRESHOLDS[family]:
            row["types"].append(family)
    return row


def findings(scores, circuit: dict, metrics: dict, ov: dict) -> list[str]:
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
    lines.extend(ov_findings(ov, metrics, induction))
    first, second = metrics["repeated_first_half_loss"], metrics["repeated_second_half_loss"]
    lines.append(
        f"Loss on repeated random tokens: {first:.2f} nats on the first half, {second:.2f} on the second"
        + (" (it predicts the repeat)." if first - second >= 0.5 else " (it barely uses the repeat).")
    )
    return lines


def ov_findings(ov: dict, metrics: dict, induction: list[tuple[int, int]]) -> list[str]:
    """What the weight-based families say: OV-copying heads (and whether the induction heads are among them),
    successor heads or why there are none to look for."""
    lines = []
    copying = ov["heads"]["ov_copying"]
    threshold = OV_THRESHOLDS["ov_copying"]
    if copying:
        named = {(row["layer"], row["head"]) for row in copying}
        text = (
            f"{count(len(copying), 'OV-copying head')} (eigenvalue positivity >= {threshold}): "
            f"{heads_text((row['layer'], row['head']) for row in copying)}; the best scores {copying[0]['score']:.2f}"
        )
        if induction:
            both = [h for h in induction if h in named]
            text += f"; {len(both)} of the {count(len(induction), 'induction head')} copy what they attend to"
        lines.append(text + ".")
    else:
        lines.append(
            f"No OV-copying head: the highest eigenvalue positivity is {metrics['max_ov_copying_score']:.2f} "
            f"(a head needs {threshold})."
        )
    if metrics["min_ov_copying_score"] <= -threshold:
        lines.append(
            f"Some head suppresses what it attends to (eigenvalue positivity {metrics['min_ov_copying_score']:.2f})."
        )
    successor = ov["successor"]
    if not successor["applicable"]:
        lines.append(f"Successor heads: not applicable, {successor['why_not']}.")
    elif ov["heads"]["successor"]:
        best = ov["heads"]["successor"][0]
        lines.append(
            f"Successor heads (map an ordinal token to the next, on {successor['n_pairs']} one-token pairs): "
            f"{heads_text((row['layer'], row['head']) for row in ov['heads']['successor'])}; "
            f"{head_name(best['layer'], best['head'])} gets {best['score']:.0%} of them."
        )
    else:
        lines.append(
            f"No successor head: the best maps {metrics['max_successor_score']:.0%} of {successor['n_pairs']} "
            f"one-token ordinal tokens to their successor (a head needs {OV_THRESHOLDS['successor']:.0%})."
        )
    return lines
