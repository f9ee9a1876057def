"""Compare models token by token: where does one predict better than another, and on which kinds of token?

Two to eight models (native, a run's checkpoints, pretrained), or every
checkpoint of one training run, are evaluated on the same sequences: the
per-token next-token loss of each, the difference between the last and the
first, the contexts where they differ most (the token, its position, a window
of the tokens around it and both losses) and a histogram of the differences.
Between consecutive models (for a run: consecutive checkpoints) it measures the
mean absolute change of the per-token loss and reports the stretch that changed
most and which tokens moved then. Given neither models nor a run, it trains the
project's default 2-layer model inside the run (or what `train` says) and
compares its checkpoints, so a spec needs no earlier run.

Tokens are reported by class: on repeated random tokens (BOS, r_1..r_h,
r_1..r_h) the first half, the first repeated token and the rest of the second
half, which only in-context copying predicts; on induction-training data the
copied tokens and the rest; on text, frequency terciles. This is the
"model diffing" of the catalogue, applied where the answer is known: when an
induction circuit forms (Olsson et al. 2022, "In-context Learning and Induction
Heads"), the loss should fall on the second-half tokens and nowhere else.

How robust (docs/science.md): between checkpoint 420 (before the induction heads
form) and the last one of default `train_transformer` runs, all of the 100 tokens
whose loss dropped most were second-half repeated tokens, on the tuning seed and on
five test seeds nobody tuned with (the test asks for at least 80%); in every
checkpoint series the stretch that changed most (ending at step 1122 or 1366) moved
the second half most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from pydantic import Field, model_validator

from experiments.engine.analysis.token_losses import (
    Decode,
    TokenClasses,
    consecutive_changes,
    copied_classes,
    frequency_classes,
    per_token_losses,
    repeated_classes,
    top_contexts,
)
from experiments.engine.datasets import (
    EvalData,
    InductionTraining,
    MarkovText,
    RepeatedRandomTokens,
    TextCorpus,
    corpus_tokens,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds._inputs import context_problem, data_fits_model, eval_batch, model_shape
from experiments.engine.models import (
    ArtifactResolver,
    ModelRef,
    NativeModelRef,
    RunModelRef,
    load_checkpoint,
    load_model,
)
from experiments.engine.params import KindParams
from experiments.engine.plots import class_lines, histogram
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.training import TrainingParams, train
from experiments.engine.types import RecordId

KEY = "model_diff"
TITLE = "Compare models token by token"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
MAX_LOSSES = 20_000_000  # per-token losses kept in memory: models x sequences x tokens
CLASSES = ("first_half", "second_half", "copied", "not_copied", "frequent", "middle", "rare")
_CLASS_WORDS = {
    "first_half": "first-half repeated tokens",
    "repeat_start": "the first repeated token",
    "second_half": "second-half repeated tokens (after the first)",
    "copied": "copied tokens of induction-training or Markov data",
    "not_copied": "tokens of induction-training or Markov data outside the copies",
    "frequent": "the most frequent third of the text",
    "middle": "the middle third of the text by frequency",
    "rare": "the rarest third of the text",
}
METRICS = {
    "n_models": "Models (or checkpoints) compared.",
    "first_model_loss": "Mean per-token loss of the first model (nats).",
    "last_model_loss": "Mean per-token loss of the last model (nats).",
    "mean_loss_difference": "Last model's loss minus the first's, averaged over every token (nats; negative: the "
    "last predicts better).",
    "mean_abs_loss_difference": "Mean absolute difference of the two models' per-token losses (nats).",
    "top_drop_second_half_share": "Share of the top_k tokens whose loss fell most that are second-half repeated "
    "tokens (repeated random tokens only).",
    "top_drop_copied_share": "Share of the top_k tokens whose loss fell most that are copied tokens "
    "(induction_training and markov_text data only).",
    "largest_change": "The largest mean absolute change of the per-token loss between consecutive models (nats).",
    "largest_change_step": "For a checkpoint series: the step that ends the stretch with the largest change.",
    **{f"{c}_loss_first": f"First model's mean loss on {_CLASS_WORDS[c]} (nats)." for c in CLASSES},
    **{f"{c}_loss_last": f"Last model's mean loss on {_CLASS_WORDS[c]} (nats)." for c in CLASSES},
}
SERIES = TRAINING_SERIES  # when it trains its own model


class Params(KindParams):
    models: list[ModelRef] | None = Field(
        None,
        min_length=2,
        max_length=8,
        description="Models to compare, in order: the difference is the last one's loss minus the first's, and the "
        "change between each and the next is measured.",
    )
    checkpoints_of: RecordId | None = Field(
        None, description="Instead: a train_transformer run whose checkpoints to compare, in order of step."
    )
    checkpoints: list[str] | None = Field(
        None, min_length=2, max_length=200, description="Only these checkpoints of that run (default: all)."
    )
    train: TrainingParams | None = Field(
        None,
        description="When neither models nor checkpoints_of is given, the run trains a model here and compares its "
        "checkpoints, so the spec needs no earlier run: how to train it (default: the project's default 2-layer "
        "model).",
    )
    data: EvalData = Field(
        RepeatedRandomTokens(n_sequences=64, half_length=31, seed=2024),
        description="The sequences every model is evaluated on.",
    )
    n_sequences: int = Field(
        64, ge=1, le=1024, description="Sequences of induction_training, markov_text or text_corpus data "
        "(repeated random tokens set their own number)."
    )  # fmt: skip
    top_k: int = Field(100, ge=1, le=1000, description="How many of the most changed tokens to list and classify.")
    window: int = Field(5, ge=0, le=32, description="Tokens shown on each side of a listed token.")

    @model_validator(mode="after")
    def _one_source(self) -> Params:
        given = [name for name in ("models", "checkpoints_of", "train") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of models, checkpoints_of and train (got {' and '.join(given)})")
        if self.checkpoints is not None and self.checkpoints_of is None:
            raise ValueError("checkpoints selects among checkpoints_of's checkpoints: give checkpoints_of too")
        if self.training is not None and isinstance(self.data, RepeatedRandomTokens):
            if problem := context_problem(self.data, self.training.model.n_ctx):
                raise ValueError(f"data: {problem}")
        return self

    @property
    def training(self) -> TrainingParams | None:
        """How the run trains its own model, or None when it compares models given to it."""
        if self.models is None and self.checkpoints_of is None:
            return self.train or TrainingParams()
        return None


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: every checkpoint exists, the models share one vocabulary (per-token losses of
    different vocabularies do not compare), and repeated random tokens fit each model's context."""
    if params.checkpoints_of is not None:
        return _check_series(params, runs)
    problems: dict[str, str] = {}
    vocabularies: list[tuple[int, int]] = []  # (model index, d_vocab) of every model whose size is known
    for i, ref in enumerate(params.models or ()):
        try:
            shape = model_shape(ref, runs)
        except ModelNotAvailable as exc:
            problems[f"models.{i}"] = str(exc)
            continue
        if shape is None:
            continue
        if vocabularies and shape.d_vocab != vocabularies[0][1]:
            first, vocab = vocabularies[0]
            problems[f"models.{i}"] = (
                f"models.{i} has a vocabulary of {shape.d_vocab} tokens and models.{first} one of {vocab}: "
                "per-token losses compare only between models with the same vocabulary."
            )
        vocabularies.append((i, shape.d_vocab))
        if too_long := data_fits_model(params.data, ref, runs):
            problems["data.half_length"] = f"models.{i}: {too_long['data.half_length']}"
    return problems


def _check_series(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    try:
        saved = [name for _, name in runs.checkpoints(params.checkpoints_of)]
    except ModelNotAvailable as exc:
        return {"checkpoints_of": str(exc)}
    wanted = saved if params.checkpoints is None else params.checkpoints
    unknown = sorted(set(wanted) - set(saved))
    if unknown:
        return {
            "checkpoints": f"Run {params.checkpoints_of} has no checkpoints named {', '.join(unknown)}; "
            f"it has: {', '.join(saved)}."
        }
    if len(set(wanted)) < 2:
        field = "checkpoints_of" if params.checkpoints is None else "checkpoints"
        return {field: f"A comparison needs at least 2 checkpoints; {len(set(wanted))} are selected."}
    last = [name for name in saved if name in set(wanted)][-1]
    return data_fits_model(params.data, RunModelRef(run=params.checkpoints_of, artifact=last), runs)


Loader = Callable[[], object]


def _label(ref) -> str:
    if isinstance(ref, NativeModelRef):
        return "native model (untrained)"
    if isinstance(ref, RunModelRef):
        return f"run {ref.run} {ref.artifact}"
    return ref.name


def _sources(params: Params, ctx) -> tuple[list[tuple[str, Loader]], list[int] | None]:
    """(label, loader) of each model in order, and the steps when they are a checkpoint series."""
    if params.models is not None:
        return [(_label(ref), lambda ref=ref: load_model(ref, ctx)) for ref in params.models], None
    if params.training is not None:
        report = within(ctx.progress, 0, 0.6, "training the base model: ")
        outcome = train(params.training, ctx, name_prefix="base-", on_progress=report)
        files = [(c["step"], ctx.artifact_dir / ctx.artifacts[c["artifact"]].path) for c in outcome.checkpoints]
    else:
        problems = check_references(params, ctx.artifact_resolver)  # checked when queued; the run may have changed
        if problems:
            raise EngineError(" ".join(problems.values()))
        wanted = set(params.checkpoints or [])
        files = [
            (step, ctx.artifact_resolver.artifact_path(params.checkpoints_of, name))
            for step, name in ctx.artifact_resolver.checkpoints(params.checkpoints_of)
            if not wanted or name in wanted
        ]
    if len(files) < 2:
        raise EngineError(f"A comparison needs at least 2 checkpoints; there are {len(files)}.")
    loaders = [(f"step {step}", lambda path=path: _checkpoint(path, ctx)) for step, path in files]
    return loaders, [step for step, _ in files]


def _checkpoint(path: Path, ctx):
    return load_checkpoint(path, device=ctx.device)[0]


def _classes(data, tokens: torch.Tensor, predictable: torch.Tensor | None, ctx) -> TokenClasses:
    if isinstance(data, RepeatedRandomTokens):
        return repeated_classes(tokens.shape[0], data.half_length)
    if isinstance(data, InductionTraining | MarkovText):
        return copied_classes(predictable)
    if isinstance(data, TextCorpus):
        return frequency_classes(tokens, corpus_tokens(data, ctx.dataset_resolver)[0])
    raise EngineError(f"Unsupported data source {data!r}")


def _decoder(model):
    tokenizer = getattr(model, "tokenizer", None)
    return None if tokenizer is None else tokenizer.decode


@dataclass
class Measured:
    """Per-token losses of every model on the same tokens, and what describes them."""

    losses: Float[torch.Tensor, "model batch pred"]
    tokens: Int[torch.Tensor, "batch pos"]
    classes: TokenClasses
    labels: list[str]  # each model's name: "step 1122", "run 4 checkpoint-3000", "gpt2"
    steps: list[int] | None  # for a checkpoint series
    decode: Decode | None  # token ids to text, where the model has a tokenizer


def measure(params: Params, ctx) -> Measured:
    """Per-token losses of every model, loading one model at a time."""
    sources, steps = _sources(params, ctx)
    start = 0.6 if params.training is not None else 0.0
    report = within(ctx.progress, start, 0.9)
    tokens = classes = decode = vocab = None
    losses = []
    for i, (label, load) in enumerate(sources):
        ctx.check_cancelled()
        model = load()
        if tokens is None:
            tokens, predictable = eval_batch(model, params.data, ctx, n_sequences=params.n_sequences)
            classes = _classes(params.data, tokens, predictable, ctx)
            vocab, decode = model.cfg.d_vocab, _decoder(model)
            if len(sources) * tokens.numel() > MAX_LOSSES:
                raise EngineError(
                    f"{len(sources)} models x {tokens.numel():,} tokens is more than {MAX_LOSSES:,} losses; "
                    "use fewer sequences or fewer checkpoints."
                )
        if model.cfg.d_vocab != vocab:
            raise EngineError(
                f"{label} has a vocabulary of {model.cfg.d_vocab} tokens and {sources[0][0]} one of {vocab}: "
                "per-token losses compare only between models with the same vocabulary."
            )
        if tokens.shape[1] > model.cfg.n_ctx:
            raise EngineError(f"The sequences have {tokens.shape[1]} tokens; {label}'s context is {model.cfg.n_ctx}.")
        losses.append(per_token_losses(model, tokens))
        report((i + 1) / len(sources), f"per-token losses of {label} ({i + 1}/{len(sources)})")
    return Measured(torch.stack(losses), tokens.cpu(), classes, [label for label, _ in sources], steps, decode)


def run(params: Params, ctx) -> KindResult:
    measured = measure(params, ctx)
    ctx.progress(0.92, "finding the tokens that changed most")
    metrics, summary = first_to_last(measured, params, ctx)
    change_metrics, change_summary = largest_change(measured, params, ctx)
    metrics |= change_metrics
    summary |= change_summary
    headline = "class_losses" if len(measured.labels) > 2 else "loss_difference_histogram"
    return KindResult(findings=findings(metrics, summary), metrics=metrics, headline=headline, summary=summary)


def first_to_last(m: Measured, params: Params, ctx) -> tuple[dict, dict]:
    """The last model against the first: loss by class, the contexts that changed most, the histogram."""
    first, last = m.losses[0], m.losses[-1]
    difference = last - first
    contexts = {"k": params.top_k, "window": params.window, "decode": m.decode}
    drop_index, drops = top_contexts(m.tokens, first, last, m.classes, drops=True, **contexts)
    _, rises = top_contexts(m.tokens, first, last, m.classes, drops=False, **contexts)
    ctx.save_artifact("top_contexts", {"from": m.labels[0], "to": m.labels[-1], "drops": drops, "rises": rises})
    ctx.save_artifact(
        "loss_difference_histogram",
        histogram(
            difference.flatten().tolist(),
            title=f"Per-token loss: {m.labels[-1]} minus {m.labels[0]}",
            x="loss difference (nats; negative: the later model predicts better)",
        ),
    )
    first_means, last_means = m.classes.means(first), m.classes.means(last)
    drop_shares = m.classes.shares(drop_index)
    metrics = {
        "n_models": len(m.labels),
        "first_model_loss": float(first.mean()),
        "last_model_loss": float(last.mean()),
        "mean_loss_difference": float(difference.mean()),
        "mean_abs_loss_difference": float(difference.abs().mean()),
    }
    for name in CLASSES:
        if name in first_means:
            metrics[f"{name}_loss_first"], metrics[f"{name}_loss_last"] = first_means[name], last_means[name]
    if "second_half" in drop_shares:
        metrics["top_drop_second_half_share"] = drop_shares["second_half"]
    if "copied" in drop_shares:
        metrics["top_drop_copied_share"] = drop_shares["copied"]
    summary = {
        "models": m.labels,
        "steps": m.steps,
        "classes": list(m.classes.names),
        "class_rule": m.classes.rule,
        "mean_loss": [round(float(losses.mean()), 4) for losses in m.losses],
        "top_drop_shares": {name: round(v, 4) for name, v in drop_shares.items()},
        "top_k": len(drops),
        "n_tokens": difference.numel(),
    }
    return metrics, summary


def largest_change(m: Measured, params: Params, ctx) -> tuple[dict, dict]:
    """Between consecutive models: the pair whose per-token losses differ most, and which tokens moved then."""
    changes = consecutive_changes(m.losses)
    biggest = int(changes.argmax())
    before, after = m.losses[biggest], m.losses[biggest + 1]
    metrics = {"largest_change": float(changes[biggest])}
    if m.steps is not None:
        metrics["largest_change_step"] = m.steps[biggest + 1]
    moved_index, moved = top_contexts(
        m.tokens, before, after, m.classes, k=params.top_k, window=params.window, drops=True, decode=m.decode
    )
    per_class = {name: [m.classes.means(losses).get(name) for losses in m.losses] for name in m.classes.names}
    largest = {
        "from": m.labels[biggest], "to": m.labels[biggest + 1], "mean_abs_change": round(metrics["largest_change"], 4),
        "class_change": {
            name: round(values[biggest + 1] - values[biggest], 4)
            for name, values in per_class.items() if values[biggest] is not None
        },
        "top_drop_shares": {name: round(v, 4) for name, v in m.classes.shares(moved_index).items()},
    }  # fmt: skip
    ctx.save_artifact("largest_change_contexts", {"from": largest["from"], "to": largest["to"], "drops": moved})
    if len(m.labels) > 2:
        xs = m.steps if m.steps is not None else m.labels
        ctx.save_artifact(
            "class_losses",
            class_lines(
                xs, {_class_text(name): values for name, values in per_class.items()},
                title="Mean loss per token class", x="step" if m.steps else "model", y="loss (nats)",
                marked=(xs[biggest], xs[biggest + 1]), marked_label="largest change", log_x=m.steps is not None,
            ),
        )  # fmt: skip
    summary = {
        "class_losses": {name: [None if v is None else round(v, 4) for v in vs] for name, vs in per_class.items()},
        "consecutive_changes": [round(float(c), 4) for c in changes],
        "largest_change": largest,
    }
    return metrics, summary


def _class_text(name: str) -> str:
    return _CLASS_WORDS.get(name, name)


def findings(metrics: dict, summary: dict) -> list[str]:
    names = summary["models"]
    first, last = names[0], names[-1]
    delta = metrics["mean_loss_difference"]
    lines = [
        f"Over {summary['n_tokens']:,} tokens, {last} has a mean loss of {metrics['last_model_loss']:.2f} nats against "
        f"{metrics['first_model_loss']:.2f} for {first} ({delta:+.2f}; mean absolute difference "
        f"{metrics['mean_abs_loss_difference']:.2f})."
    ]
    by_class = [
        f"{_class_text(name)} {values[0]:.2f} → {values[-1]:.2f}"
        for name, values in summary["class_losses"].items()
        if values[0] is not None and values[-1] is not None
    ]
    lines.append(f"Mean loss by token class, {first} → {last}: " + "; ".join(by_class) + ".")
    shares = summary["top_drop_shares"]
    top_class = max(shares, key=shares.get)
    lines.append(
        f"Of the {summary['top_k']} tokens whose loss fell most, {shares[top_class]:.0%} are {_class_text(top_class)}."
    )
    if len(names) > 2:
        largest = summary["largest_change"]
        moved = max(largest["class_change"], key=lambda name: abs(largest["class_change"][name]))
        lines.append(
            f"The largest change between consecutive {'checkpoints' if summary['steps'] else 'models'} is from "
            f"{largest['from']} to {largest['to']} (mean absolute change {largest['mean_abs_change']:.2f} nats); "
            f"then {_class_text(moved)} moved most ({largest['class_change'][moved]:+.2f} nats)."
        )
    return lines
