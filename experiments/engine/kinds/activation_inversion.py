"""Read the input tokens back out of a slice of the residual stream ("ML Chinese Whispers").

For each chosen layer, a small decoder (linear, or an MLP with one hidden
layer) is trained to predict the token at a position from that position's
activation alone: a slice of the residual stream (all of it, its first or second
half, or a range of dimensions) before block `layer`, where layer = n_layers
means the stream after the last block. The decoders train on fresh batches of
uniformly random tokens and are scored on held-out sequences: reconstruction
accuracy per layer and per position, and, for a few held-out inputs, the ten
tokens each decoder thinks most likely at every position, with their
probabilities. The same decoders are trained on a randomly initialised model of
the same configuration, which shows how much of the answer the architecture
alone gives (the embedding plus positions of a random model are invertible too;
what differs is how attention mixes them at later layers).

It measures how much of the input a layer still carries, the way embedding
inversion and "logit lens"-style probing do (Morris et al. 2023, "Text
Embeddings Reveal (Almost) As Much As Text"; Belrose et al. 2023, "Eliciting
Latent Predictions with the Tuned Lens"). With no model given it trains the
project's default 2-layer model first, so a spec needs no earlier run.

How robust (docs/science.md): from layer 0's full residual stream (token plus
position embedding) the default decoder read back every held-out token (accuracy
1.0) on the tuning seed and on five test seeds nobody tuned with, for the trained
and the random model alike; the test asks for >= 0.95. From the first half of the
stream after the last block, the trained default model of seed 0 kept about half of
the tokens and the random one nearly all (reported, not tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field, model_validator

from experiments.engine.analysis.inversion import (
    Evaluation,
    decoder,
    evaluate,
    hook_name,
    stream_reader,
    train_decoders,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds._inputs import model_shape
from experiments.engine.models import (
    ArtifactResolver,
    ModelRef,
    NativeModelRef,
    bos_token,
    build_native,
    load_checkpoint,
    load_model_and_config,
)
from experiments.engine.params import KindParams
from experiments.engine.plots import class_lines, guess_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.training import TrainingParams, train

KEY = "activation_inversion"
TITLE = "Reconstruct the input tokens from residual-stream activations"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
MAX_LAYER_METRIC = 12  # accuracy_L<l> metrics exist for layers 0..12; deeper ones are in the summary and the plots
RANDOM_SEED_OFFSET = 1000  # the random model's seed: the run's seed + this
METRICS = {
    "reconstruction_accuracy": "Share of held-out tokens the decoder of the first listed layer names (top-1).",
    "reconstruction_top10_accuracy": "Share of held-out tokens among that decoder's 10 top guesses.",
    "random_reconstruction_accuracy": "The same, from a randomly initialised model of the same configuration.",
    "last_layer_accuracy": "Reconstruction accuracy of the last listed layer.",
    "min_layer_accuracy": "The lowest reconstruction accuracy of any listed layer.",
    "chance_accuracy": "Accuracy of guessing uniformly among the tokens drawn.",
    **{f"accuracy_L{layer}": f"Reconstruction accuracy from layer {layer}." for layer in range(MAX_LAYER_METRIC + 1)},
    **{
        f"random_accuracy_L{layer}": f"Reconstruction accuracy from layer {layer} of the random model."
        for layer in range(MAX_LAYER_METRIC + 1)
    },
}
SERIES = TRAINING_SERIES  # when it trains its own model


class DimRange(KindParams):
    start: int = Field(0, ge=0, le=65535, description="First dimension of the slice.")
    stop: int = Field(ge=1, le=65536, description="One past its last dimension.")

    @model_validator(mode="after")
    def _ordered(self) -> DimRange:
        if self.start >= self.stop:
            raise ValueError("start must be below stop")
        return self


class Params(KindParams):
    model: ModelRef | None = Field(
        None, description="The model to read. Default: train one here (see `train`), so the spec needs no earlier run."
    )
    train: TrainingParams | None = Field(
        None,
        description="How to train the model when none is given (default: the project's default 2-layer model).",
    )
    layers: list[Annotated[int, Field(ge=0, le=128)]] = Field(
        [0, 1, 2],
        min_length=1,
        max_length=16,
        description="Residual streams to read: layer l is the stream before block l; l = n_layers is the stream "
        "after the last block. The first is the headline.",
    )
    dims: Literal["all", "first_half", "second_half"] | DimRange = Field(
        "all", description="Which dimensions of the residual stream the decoder sees."
    )
    decoder: Literal["linear", "mlp"] = Field(
        "mlp",
        description="An MLP with one hidden layer, or a linear map (asks whether the token is linearly readable; it "
        "needs many more steps to read the last layer of a trained model).",
    )
    hidden: int = Field(256, ge=8, le=2048, description="Width of the MLP decoder's hidden layer.")
    steps: int = Field(1000, ge=10, le=20_000, description="Training steps of the decoders.")
    batch_size: int = Field(32, ge=1, le=512, description="Sequences per step.")
    lr: float = Field(1e-2, gt=0, le=1, description="Learning rate of the decoders (AdamW).")
    length: int | None = Field(None, ge=2, le=2048, description="Tokens per sequence (default: the model's context).")
    n_eval_sequences: int = Field(256, ge=8, le=4096, description="Held-out sequences the accuracy is measured on.")
    n_examples: int = Field(2, ge=0, le=8, description="Held-out inputs whose top-10 guesses are shown.")
    compare_random: bool = Field(
        True, description="Also decode a randomly initialised model of the same configuration (native models)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Params:
        if self.model is not None and self.train is not None:
            raise ValueError("give a model or train, not both")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError("layers must be distinct")
        return self

    @property
    def training(self) -> TrainingParams | None:
        return (self.train or TrainingParams()) if self.model is None else None


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the model exists, and the layers, dimensions and length fit it."""
    ref = params.model if params.model is not None else NativeModelRef(config=params.training.model)
    field = "model" if params.model is not None else "train.model"
    try:
        shape = model_shape(ref, runs)
    except ModelNotAvailable as exc:
        return {"model": str(exc)}
    if shape is None:
        return {}
    problems = {}
    for i, layer in enumerate(params.layers):
        if layer > shape.n_layers:
            problems[f"layers.{i}"] = (
                f"Layer {layer} is beyond the model: it has {shape.n_layers} layers, so layers 0..{shape.n_layers} "
                f"can be read ({shape.n_layers} is the stream after the last block; see {field})."
            )
    if isinstance(params.dims, DimRange) and params.dims.stop > shape.d_model:
        problems["dims.stop"] = f"The residual stream has {shape.d_model} dimensions; stop is {params.dims.stop}."
    if params.length is not None and params.length > shape.n_ctx:
        problems["length"] = f"The model's context is {shape.n_ctx} tokens; length is {params.length}."
    return problems


def dim_slice(dims, d_model: int) -> slice:
    if dims == "all":
        return slice(0, d_model)
    if dims == "first_half":
        return slice(0, d_model // 2)
    if dims == "second_half":
        return slice(d_model // 2, d_model)
    if dims.stop > d_model:
        raise EngineError(f"dims.stop: the residual stream has {d_model} dimensions; stop is {dims.stop}.")
    return slice(dims.start, dims.stop)


def random_tokens(n: int, length: int, d_vocab: int, bos: int, generator: torch.Generator) -> torch.Tensor:
    """BOS, then uniformly random tokens (never the BOS id)."""
    tokens = torch.randint(0, d_vocab - 1, (n, length), generator=generator)
    tokens = tokens + (tokens >= bos).long()  # skip the BOS id
    tokens[:, 0] = bos
    return tokens


def _model(params: Params, ctx):
    """(model, native config or None, label) of the model to read."""
    if params.model is not None:
        model, config = load_model_and_config(params.model, ctx)
        return model, config, "the model"
    report = within(ctx.progress, 0, 0.5, "training the base model: ")
    outcome = train(params.training, ctx, name_prefix="base-", on_progress=report)
    last = outcome.checkpoints[-1]["artifact"]
    model, config = load_checkpoint(ctx.artifact_dir / ctx.artifacts[last].path, device=ctx.device)
    return model, config, f"the model trained here ({params.training.steps} steps)"


@dataclass
class Inversion:
    """What the decoders of every (model, layer) got right on the held-out sequences."""

    evaluations: dict[tuple[str, int], Evaluation]  # ("trained" | "random", layer) -> its decoder's scores
    held_out: torch.Tensor
    final_losses: dict[str, float]  # the last training batch's loss per decoder
    dims: slice
    random: bool  # whether a random model was decoded too


def run(params: Params, ctx) -> KindResult:
    problems = check_references(params, ctx.artifact_resolver)
    if problems:
        raise EngineError(" ".join(f"{k}: {v}" for k, v in problems.items()))
    ctx.progress(0.02, "loading the model")
    model, config, label = _model(params, ctx)
    inversion = invert(params, ctx, model, config)
    return _report(params, ctx, inversion, model, label)


def invert(params: Params, ctx, model, config) -> Inversion:
    """Train a decoder per layer (and per model, with the random one) on fresh random tokens; score them on
    held-out sequences."""
    n_layers, d_model, d_vocab = model.cfg.n_layers, model.cfg.d_model, model.cfg.d_vocab
    if max(params.layers) > n_layers:
        raise EngineError(f"layers: the model has {n_layers} layers; layers 0..{n_layers} can be read.")
    dims = dim_slice(params.dims, d_model)
    length = params.length or model.cfg.n_ctx
    if length > model.cfg.n_ctx:
        raise EngineError(f"length: the model's context is {model.cfg.n_ctx} tokens; length is {length}.")
    readers = {"trained": stream_reader(model, config, params.layers, dims)}
    if params.compare_random and config is not None:
        random_model = build_native(config, seed=ctx.seed + RANDOM_SEED_OFFSET, device=ctx.device)
        readers["random"] = stream_reader(random_model, config, params.layers, dims)
    bos = bos_token(model)
    torch.manual_seed(ctx.seed)
    decoders = {
        (name, layer): decoder(params.decoder, dims.stop - dims.start, d_vocab, params.hidden).to(ctx.device)
        for name in readers
        for layer in params.layers
    }

    def activations_of(tokens: torch.Tensor) -> dict:
        return {(name, layer): acts for name, read in readers.items() for layer, acts in read(tokens).items()}

    generator = torch.Generator().manual_seed(ctx.seed + 3)
    report = within(ctx.progress, 0.5 if params.model is None else 0.05, 0.9, "training the decoders: ")

    def batches():
        for _ in range(params.steps):
            ctx.check_cancelled()
            yield random_tokens(params.batch_size, length, d_vocab, bos, generator).to(ctx.device)

    def on_step(step: int) -> None:
        if step % 20 == 0 or step == params.steps:
            report(step / params.steps, f"step {step}/{params.steps}")

    final_losses = train_decoders(decoders, activations_of, batches(), lr=params.lr, on_step=on_step)
    ctx.progress(0.92, "scoring the decoders on held-out sequences")
    held_out = random_tokens(
        params.n_eval_sequences, length, d_vocab, bos, torch.Generator().manual_seed(ctx.seed + 11)
    ).to(ctx.device)
    activations = activations_of(held_out)
    evaluations = {
        key: evaluate(d.eval(), activations[key], held_out, params.n_examples) for key, d in decoders.items()
    }
    names = [f"{name} L{layer}" for name, layer in decoders]
    losses = {name: round(loss, 4) for name, loss in zip(names, final_losses, strict=True)}
    return Inversion(evaluations, held_out, losses, dims, random="random" in readers)


def _report(params: Params, ctx, inversion: Inversion, model, label: str) -> KindResult:
    """Metrics, plots, the top-10 guesses and the summary of an inversion."""
    results, held_out, dims, d_vocab = inversion.evaluations, inversion.held_out, inversion.dims, model.cfg.d_vocab
    layers = params.layers
    headline = layers[0]
    trained = {layer: results[("trained", layer)] for layer in layers}
    metrics = {
        "reconstruction_accuracy": trained[headline].accuracy,
        "reconstruction_top10_accuracy": trained[headline].top10_accuracy,
        "last_layer_accuracy": trained[layers[-1]].accuracy,
        "min_layer_accuracy": min(e.accuracy for e in trained.values()),
        "chance_accuracy": 1 / (d_vocab - 1),
    }
    for layer, e in trained.items():
        if layer <= MAX_LAYER_METRIC:
            metrics[f"accuracy_L{layer}"] = e.accuracy
    if inversion.random:
        metrics["random_reconstruction_accuracy"] = results[("random", headline)].accuracy
        for layer in layers:
            if layer <= MAX_LAYER_METRIC:
                metrics[f"random_accuracy_L{layer}"] = results[("random", layer)].accuracy

    positions = list(range(1, held_out.shape[1]))
    lines = {f"layer {layer}": [round(a, 4) for a in trained[layer].per_position] for layer in layers}
    if inversion.random:
        lines |= {
            f"random model, layer {layer}": [round(a, 4) for a in results[("random", layer)].per_position]
            for layer in layers
        }
    ctx.save_artifact(
        "accuracy_by_position",
        class_lines(positions, lines, title="Reconstruction accuracy by position", x="position", y="accuracy"),
    )
    by_layer = {"trained": [trained[layer].accuracy for layer in layers]}
    if inversion.random:
        by_layer["random model"] = [results[("random", layer)].accuracy for layer in layers]
    ordered = sorted(range(len(layers)), key=lambda i: layers[i])
    ctx.save_artifact(
        "accuracy_by_layer",
        class_lines(
            [layers[i] for i in ordered], {name: [v[i] for i in ordered] for name, v in by_layer.items()},
            title=f"Reconstruction accuracy by layer ({_dims_text(params.dims, dims)})",
            x="layer (residual stream before block; n_layers = after the last)", y="accuracy",
        ),
    )  # fmt: skip
    decode = getattr(model, "tokenizer", None)
    examples = _examples(trained[headline], held_out, decode, headline)
    if examples:
        ctx.save_artifact("top10_guesses", {"layer": headline, "examples": examples})
        ctx.save_artifact(
            "top10_guesses_heatmap",
            guess_heatmaps(
                [_figure_example(e) for e in examples],
                title=f"Top-10 guesses of the layer-{headline} decoder for held-out inputs (✓ = the true token)",
            ),
        )
    summary = {
        "model": label,
        "layers": layers,
        "hooks": [hook_name(layer, model.cfg.n_layers) for layer in layers],
        "dims": [dims.start, dims.stop],
        "d_model": model.cfg.d_model,
        "decoder": params.decoder,
        "accuracy": {name: [round(v, 4) for v in values] for name, values in by_layer.items()},
        "top10_accuracy": [round(trained[layer].top10_accuracy, 4) for layer in layers],
        "final_training_loss": inversion.final_losses,
        "random_model": inversion.random,
        "positions": "each position's token is decoded from that position's activation alone; position 0 (BOS) "
        "is left out",
    }
    headline_figure = "accuracy_by_layer"
    return KindResult(findings=findings(metrics, summary), metrics=metrics, headline=headline_figure, summary=summary)


def _dims_text(dims_param, dims: slice) -> str:
    if dims_param == "all":
        return f"all {dims.stop} dimensions"
    return f"dimensions {dims.start}..{dims.stop - 1}"


def _examples(evaluation, held_out: torch.Tensor, tokenizer, layer: int) -> list[dict]:
    """The top-10 guesses and their probabilities for the first held-out inputs, as JSON rows."""
    rows = []
    for i in range(evaluation.guesses.shape[0]):
        truth = held_out[i, 1:].tolist()
        row = {
            "sequence": i,
            "layer": layer,
            "positions": list(range(1, len(truth) + 1)),
            "truth": truth,
            "guesses": evaluation.guesses[i].tolist(),
            "probabilities": [[round(p, 4) for p in ps] for ps in evaluation.probabilities[i].tolist()],
        }
        if tokenizer is not None:
            row["truth_text"] = [tokenizer.decode([t]) for t in truth]
            row["guesses_text"] = [[tokenizer.decode([t]) for t in ts] for ts in row["guesses"]]
        rows.append(row)
    return rows


FIGURE_POSITIONS = 16  # positions per input drawn in the guesses figure (ten labelled cells each); the JSON has all


def _figure_example(row: dict) -> dict:
    shown = slice(0, FIGURE_POSITIONS)
    truth = row.get("truth_text", row["truth"])
    guesses = row.get("guesses_text", row["guesses"])
    return {
        "title": f"held-out input {row['sequence']}, first {min(FIGURE_POSITIONS, len(truth))} positions",
        "positions": row["positions"][shown],
        "truth": truth[shown],
        "guesses": guesses[shown],
        "probabilities": row["probabilities"][shown],
    }


DECODER_WORDS = {"linear": "A linear decoder", "mlp": "An MLP decoder"}


def findings(metrics: dict, summary: dict) -> list[str]:
    layers = summary["layers"]
    first = layers[0]
    acc = summary["accuracy"]
    dims = summary["dims"]
    width = "the full residual stream" if dims == [0, summary["d_model"]] else f"dimensions {dims[0]}..{dims[1] - 1}"
    lines = [
        f"{DECODER_WORDS[summary['decoder']]} reads {metrics['reconstruction_accuracy']:.1%} of held-out tokens back "
        f"from {width} at layer {first} of {summary['model']} (top-10: {metrics['reconstruction_top10_accuracy']:.1%}; "
        f"chance {metrics['chance_accuracy']:.1%})."
    ]
    if len(layers) > 1:
        per_layer = ", ".join(f"layer {layer} {a:.1%}" for layer, a in zip(layers, acc["trained"], strict=True))
        lines.append(f"By layer: {per_layer}.")
    if summary["random_model"]:
        per_layer = ", ".join(f"layer {layer} {a:.1%}" for layer, a in zip(layers, acc["random model"], strict=True))
        lines.append(f"From a randomly initialised model of the same configuration: {per_layer}.")
    return lines
