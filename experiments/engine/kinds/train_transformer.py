"""Train a small TransformerLens-native transformer and save checkpoints for later analysis.

Trains an attention-only model or one with MLPs (bounded layers, width, heads,
context and steps) on a dataset: `induction_training` (random tokens with a
copied segment, where only an induction mechanism predicts the copy), `markov_text`,
`facts` (subject -> relation -> attribute statements, the loss on the attribute;
for `causal_tracing`), `dialogues` (synthetic dialogues with a built-in behavioural effect, for the
behavioural kinds' tests) or an uploaded `text_corpus`. Logs the loss series, the loss on copied tokens, and
the loss on the second half of repeated random tokens (in-context learning,
Olsson et al. 2022, "In-context Learning and Induction Heads"). Checkpoints
(config + weights, safetensors) are saved at log-spaced steps by default, so
`checkpoint_pca`, `head_detection` and the other kinds can load any of them
with `{"source": "run", "run": <this run>, "artifact": "checkpoint-<step>"}`.

Training uses a lean module with fused attention and the same parameters as
the TL-native model; its weights load into a TransformerBridge unchanged.

How robust the defaults are (docs/science.md): the 2-layer model formed an
induction head (score >= 0.5) by step 3000 in every tuning run and in at least
4 of 5 test seeds nobody tuned with, with vocabularies of 64 and 48; with 96 it
formed a copying circuit. The 300-step warm-up is what made that hold: with 50,
some seeds stayed on the loss plateau or learned a shifted circuit. A partial
`model` (say `{"n_layers": 1}`) changes only the fields it names.
"""

from __future__ import annotations

from experiments.engine.registry import KindResult
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.training import TrainingParams, train
from experiments.engine.wording import count

KEY = "train_transformer"
COPIES_MIN_GAIN = 0.5  # nats of in-context gain from which the findings say the model copies in context
TITLE = "Train a small transformer"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3 * 3600
TIME_LIMIT = 3 * 3600 + 120
METRICS = {
    "final_loss": "Mean training loss over the last 50 steps (nats per token).",
    "copied_segment_loss": "Loss on copied tokens that only induction can predict, on 256 held-out sequences "
    "(induction_training data only).",
    "copied_segment_accuracy": "Top-1 accuracy on those copied tokens (induction_training data only).",
    "repeated_first_half_loss": "Loss on the first half of repeated random tokens (no repeat to use yet).",
    "repeated_second_half_loss": "Loss on the second half of repeated random tokens: low means in-context copying.",
    "in_context_gain": "First-half minus second-half loss on repeated random tokens (nats).",
    "n_checkpoints": "How many checkpoints were saved.",
    "ioi_logit_difference": "Mean logit difference (IO minus S) at the end of 256 IOI prompts with names never used "
    "in a training prompt (ioi_prompts data only).",
    "ioi_accuracy": "Share of those prompts where the IO name's logit is above the subject's (ioi_prompts data only).",
    "facts_accuracy": "Top-1 accuracy on the attributes of the training templates (facts data only).",
    "paraphrase_accuracy": "Top-1 accuracy on the attributes of the held-out paraphrase templates (facts data only).",
    "dialogue_accuracy": "Share of the training dialogues (every item under every framing) whose whole answer the "
    "model reproduces with top-1 predictions (dialogues data only).",
}


SERIES = TRAINING_SERIES


class Params(TrainingParams):
    pass


def run(params: Params, ctx) -> KindResult:
    outcome = train(params, ctx)
    metrics = {
        "final_loss": outcome.final_loss,
        "repeated_first_half_loss": outcome.repeated_first_half_loss,
        "repeated_second_half_loss": outcome.repeated_second_half_loss,
        "in_context_gain": outcome.repeated_first_half_loss - outcome.repeated_second_half_loss,
        "n_checkpoints": len(outcome.checkpoints),
    }
    if outcome.copied_segment_loss is not None:
        metrics["copied_segment_loss"] = outcome.copied_segment_loss
        metrics["copied_segment_accuracy"] = outcome.copied_segment_accuracy
    if outcome.ioi_logit_difference is not None:
        metrics["ioi_logit_difference"] = outcome.ioi_logit_difference
        metrics["ioi_accuracy"] = outcome.ioi_accuracy
    if outcome.facts_accuracy is not None:
        metrics["facts_accuracy"] = outcome.facts_accuracy
        metrics["paraphrase_accuracy"] = outcome.paraphrase_accuracy
    if outcome.dialogue_accuracy is not None:
        metrics["dialogue_accuracy"] = outcome.dialogue_accuracy
    summary = {
        "checkpoints": outcome.checkpoints,
        "model": params.model.model_dump(),
        "n_parameters": sum(p.numel() for p in outcome.model.parameters()),
        "tokens_seen": params.steps * params.batch_size * params.model.n_ctx,
    }
    return KindResult(findings=findings(params, metrics, summary), metrics=metrics, summary=summary)


def findings(params: Params, metrics: dict, summary: dict) -> list[str]:
    model = params.model
    shape = "attention-only" if model.attn_only else "with MLPs"
    data = {
        "induction_training": "induction-training data",
        "markov_text": "Markov text",
        "ioi_prompts": "IOI prompts",
        "facts": "facts",
        "dialogues": f"synthetic {getattr(params.data, 'behaviour', '')} dialogues",
    }.get(params.data.source, "the uploaded text")
    lines = [
        f"Trained a {model.n_layers}-layer {shape} model (d_model {model.d_model}, {model.n_heads} heads, "
        f"{summary['n_parameters']:,} parameters) for {params.steps} steps on {data}; final training loss "
        f"{metrics['final_loss']:.3f} nats."
    ]
    if "facts_accuracy" in metrics:
        lines.append(
            f"It answers {metrics['facts_accuracy']:.0%} of the facts in their training templates and "
            f"{metrics['paraphrase_accuracy']:.0%} in held-out paraphrases."
        )
    if "dialogue_accuracy" in metrics:
        lines.append(f"It reproduces {metrics['dialogue_accuracy']:.0%} of its training dialogues' answers exactly.")
    first, second = metrics["repeated_first_half_loss"], metrics["repeated_second_half_loss"]
    gain = metrics["in_context_gain"]
    if params.data.source in ("facts", "dialogues"):
        pass  # repeated random tokens say nothing of a model that only saw facts or dialogues
    elif gain >= COPIES_MIN_GAIN:
        lines.append(
            f"It copies in context: on repeated random tokens the second half costs {second:.2f} nats against "
            f"{first:.2f} for the first (a gain of {gain:.2f})."
        )
    else:
        lines.append(
            f"It does not copy in context: on repeated random tokens the second half costs {second:.2f} nats, "
            f"the first {first:.2f} (a gain of {gain:.2f}, under {COPIES_MIN_GAIN})."
        )
    if "copied_segment_accuracy" in metrics:
        lines.append(
            f"On copied tokens only induction can predict, top-1 accuracy is "
            f"{metrics['copied_segment_accuracy']:.0%} (loss {metrics['copied_segment_loss']:.2f} nats)."
        )
    if "ioi_logit_difference" in metrics:
        lines.append(
            f"On IOI prompts with names it never saw in one, it prefers the indirect object to the subject by "
            f"{metrics['ioi_logit_difference']:.2f} nats of logit difference on average, and in "
            f"{metrics['ioi_accuracy']:.0%} of prompts."
        )
    steps = [c["step"] for c in summary["checkpoints"]]
    if steps:
        when = f"at step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]} to {steps[-1]}"
        lines.append(f"Saved {count(len(steps), 'checkpoint')}, {when}, for the analysis kinds.")
    return lines
