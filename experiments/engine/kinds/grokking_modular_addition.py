"""Grokking of modular addition, with Nanda et al.'s progress measures (2023, "Progress measures for grokking via
mechanistic interpretability").

A one-layer transformer (no LayerNorm, ReLU MLP; `experiments.engine.modular_addition`) learns `a + b mod p` from
the tokens `a b =`, with the loss on the last position only, trained full batch with AdamW and strong weight decay
on a fraction of the p^2 pairs. It first memorises the training pairs (train accuracy near 1, test accuracy near
chance), then, much later, generalises: it groks. The kind logs train and test loss and accuracy and the weight
norm at log-spaced steps, saves log-spaced checkpoints, and measures at each checkpoint:

- the Fourier spectrum of the embedding W_E over the input tokens (squared norm per frequency k = 1..(p-1)/2,
  cos and sin summed; `experiments.engine.analysis.fourier`), the share its strongest `n_top_frequencies` carry,
  and the final model's key frequencies (each with at least 3x an even share);
- the restricted loss (the logits kept only along the key frequencies' cos/sin(w_k (a + b)) directions over the
  pairs, plus each answer's mean; on all pairs) and the excluded loss (the logits with those directions removed;
  on the training pairs). The excluded loss rises while the train loss stays low when the generalising circuit
  forms and memorisation is given up; the restricted loss falls before the test loss does.

The phases, as steps, from the logged numbers (first logged step where each holds):
memorisation ends when train accuracy reaches 0.99; circuit formation ends when the restricted loss first falls
below RESTRICTED_FORMED (0.1 nats: the key frequencies alone then give the answers) — or, when it never does,
it is not reported; clean-up ends when test accuracy reaches 0.99. Clean-up is the stretch between: weight decay
removes the memorising components, the test loss falls and so does the weight norm.

Two presets fill the fields a spec leaves out (normalized params hold every resolved value):
- `cpu` (the default): p = 59, train fraction 0.4 (1,392 of 3,481 pairs), d_model 128, 4 heads, d_mlp 512,
  AdamW lr 3e-3, weight decay 1.0, betas (0.9, 0.98), 10 warm-up steps, 3,000 full-batch steps: Nanda's model
  and optimiser on a smaller prime, a larger training share and a 3x higher learning rate, so it groks within
  about 1,200 steps, 1-2 minutes on one CPU core. (With train fraction 0.3 the tuning seeds grokked between
  steps 1.4k and 5.4k at lr 3e-3, and later at lr 1e-3: too slow and too variable for a CPU default.)
- `nanda2023`: the paper's p = 113, train fraction 0.3 (3,831 pairs), same model and optimiser at lr 1e-3,
  40,000 steps; it groks after roughly 10k steps. Meant for a GPU worker (about an hour on one CPU core).

How robust (docs/science.md): with the `cpu` preset, train accuracy reached 0.99 by step ~45 and test accuracy
0.99 between steps 666 and 1,270 on the three tuning seeds; on all 4 of 4 test seeds nobody tuned with, the
model grokked 14.8-20.4x after memorising (test 0.99 at steps 666-920, final test accuracy 1.0), the top 6
frequencies carried 99% of the embedding's squared norm at the end against 27-29% at memorisation (3 or 4 key
frequencies), and the excluded loss rose from 0.3-0.45 nats at memorisation to 5.4-10.2 nats while the train loss
stayed below 1e-5. The phase rules are simple thresholds on these curves; the excluded loss peaked before the end
of clean-up on 3 of 4 test seeds and after it on one (step 2,464): where it peaks is not itself a phase boundary.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from pydantic import Field, ValidationInfo, field_validator, model_validator

from experiments.engine.analysis.fourier import (
    frequency_energy,
    key_frequencies,
    restricted_and_excluded_loss,
    top_share,
)
from experiments.engine.modular_addition import (
    ModularShape,
    OneLayerTransformer,
    accuracy,
    cross_entropy_f64,
    modular_addition_data,
    weight_norm,
)
from experiments.engine.params import KindParams
from experiments.engine.registry import KindResult

KEY = "grokking_modular_addition"
TITLE = "Grokking of modular addition, with progress measures"
DEVICE = "gpu"  # a training kind, like train_transformer; the cpu preset is sized for a CPU worker
SOFT_TIME_LIMIT = 3 * 3600
TIME_LIMIT = 3 * 3600 + 120
VERSION = "1"

ACCURATE = 0.99  # "reached" for train and test accuracy
RESTRICTED_FORMED = 0.1  # nats: restricted loss under which the key frequencies alone give the answers
MAX_PAIRS_X_WIDTH = 200_000_000  # p^2 x (d_mlp + d_model): the size of one full-grid forward pass

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "p": 59, "train_fraction": 0.4, "d_model": 128, "n_heads": 4, "d_mlp": 512, "lr": 3e-3,
        "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98, "warmup_steps": 10, "steps": 3000,
    },
    "nanda2023": {
        "p": 113, "train_fraction": 0.3, "d_model": 128, "n_heads": 4, "d_mlp": 512, "lr": 1e-3,
        "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.98, "warmup_steps": 10, "steps": 40_000,
    },
}  # fmt: skip
CPU = PRESETS["cpu"]

METRICS = {
    "train_accuracy": "Accuracy on the training pairs at the last step.",
    "test_accuracy": "Accuracy on the held-out pairs at the last step.",
    "train_loss": "Loss on the training pairs at the last step (nats).",
    "test_loss": "Loss on the held-out pairs at the last step (nats).",
    "step_train_99": "First logged step with train accuracy >= 0.99 (the end of memorisation).",
    "step_test_99": "First logged step with test accuracy >= 0.99 (the end of clean-up).",
    "grokking_delay_ratio": "step_test_99 / step_train_99: how many times later the model generalised than it "
    "memorised.",
    "top_frequencies_norm_share": "Share of the final embedding's squared norm carried by its n_top_frequencies "
    "strongest Fourier frequencies (0..1).",
    "memorised_top_frequencies_norm_share": "The same share at the first checkpoint from step_train_99 on (the "
    "memorising model).",
    "initial_top_frequencies_norm_share": "The same share at initialisation.",
    "n_key_frequencies": "Frequencies of the final embedding with at least 3x an even share of its squared norm.",
    "restricted_loss": "Final restricted loss: only the key frequencies' components of the logits, all pairs (nats).",
    "excluded_loss": "Final excluded loss: the logits without the key frequencies' components, training pairs (nats).",
    "excluded_loss_at_memorisation": "Excluded loss at the first checkpoint from step_train_99 on (nats).",
    "max_excluded_loss": "Highest excluded loss of the checkpoints from the end of memorisation on (nats).",
    "max_excluded_loss_step": "The checkpoint where it was highest.",
    "train_loss_at_max_excluded": "Train loss at that checkpoint (nats).",
    "memorisation_end_step": "End of memorisation: step_train_99.",
    "circuit_formation_end_step": "End of circuit formation: first checkpoint with restricted loss < 0.1 nats.",
    "cleanup_end_step": "End of clean-up: step_test_99.",
    "weight_norm": "L2 norm of all parameters at the last step.",
    "weight_norm_at_memorisation": "L2 norm of all parameters at step_train_99.",
}

SERIES = {
    "train_loss": "train loss (nats)",
    "test_loss": "test loss (nats)",
    "train_accuracy": "train accuracy (fraction)",
    "test_accuracy": "test accuracy (fraction)",
    "weight_norm": "L2 norm of all parameters (norm)",
    "restricted_loss": "restricted loss: key frequencies only, all pairs (nats)",
    "excluded_loss": "excluded loss: key frequencies removed, training pairs (nats)",
    "top_frequencies_norm_share": "share of the embedding's squared norm in its top frequencies (fraction)",
}


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


class Params(KindParams):
    """Fields left out take the preset's value (see the module docstring); the defaults shown are the cpu preset's."""

    preset: Literal["cpu", "nanda2023"] = Field(
        "cpu", description="Which configuration fills the fields left out: 'cpu' (p = 59, groks in 1-2 minutes "
        "on one core) or 'nanda2023' (the paper's p = 113, for a GPU)."
    )  # fmt: skip
    p: int = Field(CPU["p"], ge=3, le=257, description="The modulus, an odd prime.")
    train_fraction: float = Field(
        CPU["train_fraction"], gt=0, lt=1, description="Share of the p^2 pairs trained on; the rest are the test set."
    )
    d_model: int = Field(CPU["d_model"], ge=8, le=512, description="Width of the residual stream.")
    n_heads: int = Field(CPU["n_heads"], ge=1, le=16, description="Attention heads (d_head = d_model / n_heads).")
    d_mlp: int = Field(CPU["d_mlp"], ge=8, le=4096, description="Hidden ReLU units of the MLP.")
    lr: float = Field(CPU["lr"], gt=0, le=0.1, description="AdamW learning rate (after the warm-up).")
    weight_decay: float = Field(CPU["weight_decay"], ge=0, le=10, description="AdamW weight decay.")
    beta1: float = Field(CPU["beta1"], ge=0, lt=1, description="AdamW beta1.")
    beta2: float = Field(CPU["beta2"], ge=0, lt=1, description="AdamW beta2.")
    warmup_steps: int = Field(CPU["warmup_steps"], ge=0, le=10_000, description="Steps of linear warm-up.")
    steps: int = Field(CPU["steps"], ge=10, le=100_000, description="Full-batch training steps.")
    n_series_points: int = Field(
        150, ge=10, le=1000, description="Log-spaced steps at which train and test loss and accuracy are logged."
    )
    n_checkpoints: int = Field(
        30, ge=3, le=100, description="Log-spaced checkpoints (the last step is always one), each analysed."
    )
    n_top_frequencies: int = Field(
        6, ge=1, le=20, description="How many of the strongest frequencies the norm share counts."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = PRESETS.get(data.get("preset", "cpu"))
            if preset is not None:  # an unknown preset is refused by the field itself
                return preset | data
        return data

    @field_validator("p")
    @classmethod
    def _prime(cls, p: int) -> int:
        if not _is_prime(p):
            raise ValueError(f"p must be a prime; {p} is not")
        return p

    @field_validator("train_fraction")
    @classmethod
    def _leaves_both_sets(cls, fraction: float, info: ValidationInfo) -> float:
        p = info.data.get("p")
        if p is not None:
            n_train = round(fraction * p**2)
            if n_train < 1 or n_train >= p**2:
                raise ValueError(
                    f"{fraction} of the {p**2} pairs is {n_train}; both the training set and the test set need at "
                    "least one pair"
                )
        return fraction

    @field_validator("n_heads")
    @classmethod
    def _divides_width(cls, n_heads: int, info: ValidationInfo) -> int:
        d_model = info.data.get("d_model")
        if d_model is not None and d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        return n_heads

    @field_validator("d_mlp")
    @classmethod
    def _fits(cls, d_mlp: int, info: ValidationInfo) -> int:
        p, d_model = info.data.get("p"), info.data.get("d_model")
        if p is not None and d_model is not None and p**2 * (d_mlp + d_model) > MAX_PAIRS_X_WIDTH:
            raise ValueError(f"p^2 x (d_mlp + d_model) must be at most {MAX_PAIRS_X_WIDTH:,}; use a smaller p or MLP")
        return d_mlp

    def series_steps(self) -> list[int]:
        return _log_spaced(self.steps, self.n_series_points, first=1)

    def checkpoint_steps(self) -> list[int]:
        return _log_spaced(self.steps, self.n_checkpoints, first=min(10, self.steps))


def _log_spaced(last: int, n: int, *, first: int) -> list[int]:
    return sorted({round(float(s)) for s in np.geomspace(first, last, n)} | {last})


def _first(steps: list[int], values: list[float], threshold: float, *, below: bool = False) -> int | None:
    return next((s for s, v in zip(steps, values, strict=True) if (v < threshold if below else v >= threshold)), None)


def _first_from(steps: list[int], step: int | None) -> int:
    """Index of the first of `steps` at or after `step` (the last when there is none or `step` is None)."""
    if step is None:
        return len(steps) - 1
    return next((i for i, s in enumerate(steps) if s >= step), len(steps) - 1)


def run(params: Params, ctx) -> KindResult:
    device = ctx.device
    shape = ModularShape(p=params.p, d_model=params.d_model, n_heads=params.n_heads, d_mlp=params.d_mlp)
    data = modular_addition_data(params.p, params.train_fraction, seed=ctx.seed)
    model = OneLayerTransformer(shape)
    model.reset_parameters(torch.Generator().manual_seed(ctx.seed))
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.lr, weight_decay=params.weight_decay, betas=(params.beta1, params.beta2)
    )
    tokens, labels = data.tokens.to(device), data.labels.to(device)
    train, test = data.train.to(device), data.test.to(device)
    train_tokens, train_labels = tokens[train], labels[train]
    series_steps, checkpoint_steps = set(params.series_steps()), set(params.checkpoint_steps())
    history: dict[str, list[float]] = {name: [] for name in ("train_loss", "test_loss", "train_accuracy",
                                                              "test_accuracy", "weight_norm")}  # fmt: skip
    logged: list[int] = []
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = [(0, copy.deepcopy(model.state_dict()))]

    for step in range(1, params.steps + 1):
        ctx.check_cancelled()
        for group in optimizer.param_groups:
            group["lr"] = params.lr * min(1.0, step / params.warmup_steps) if params.warmup_steps else params.lr
        loss = cross_entropy_f64(model(train_tokens), train_labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step in series_steps:
            values = _evaluate(model, tokens, labels, train, test)
            logged.append(step)
            for name, value in values.items():
                history[name].append(value)
                ctx.log_metric(name, value, step)
            ctx.progress(
                0.9 * step / params.steps,
                f"training: step {step}/{params.steps}, train accuracy {values['train_accuracy']:.2f}, "
                f"test accuracy {values['test_accuracy']:.2f}",
            )
        if step in checkpoint_steps:
            state = {name: w.detach().cpu().clone() for name, w in model.state_dict().items()}
            snapshots.append((step, state))
            ctx.save_artifact(f"checkpoint-{step}", state, meta={"step": step, "p": params.p})

    ctx.progress(0.9, "progress measures at each checkpoint")
    measures = _progress_measures(model, snapshots, data, params, ctx)
    metrics, summary = _summarise(params, logged, history, measures)
    ctx.save_artifact("curves", _curves_figure(logged, history, metrics))
    ctx.save_artifact("fourier_norms", _fourier_figure(measures["final_energy"], measures["key_frequencies"]))
    ctx.save_artifact("progress_measures", _measures_figure(measures, metrics))
    return KindResult(findings=findings(params, metrics, summary), metrics=metrics, headline="curves", summary=summary)


def _evaluate(model, tokens, labels, train, test) -> dict[str, float]:
    with torch.no_grad():
        logits = model(tokens)
    return {
        "train_loss": float(cross_entropy_f64(logits[train], labels[train])),
        "test_loss": float(cross_entropy_f64(logits[test], labels[test])),
        "train_accuracy": accuracy(logits[train], labels[train]),
        "test_accuracy": accuracy(logits[test], labels[test]),
        "weight_norm": weight_norm(model),
    }


def _progress_measures(model, snapshots, data, params: Params, ctx) -> dict[str, Any]:
    """Fourier share, restricted and excluded loss (with the final model's key frequencies) at every checkpoint."""
    p, top = params.p, params.n_top_frequencies
    final_energy, _ = frequency_energy(model.W_E[:p])
    keys = key_frequencies(final_energy)
    measures: dict[str, Any] = {"steps": [], "share": [], "restricted": [], "excluded": [], "train_loss": []}
    tokens, labels, train = data.tokens.to(ctx.device), data.labels.to(ctx.device), data.train.to(ctx.device)
    for step, state in snapshots:
        ctx.check_cancelled()
        model.load_state_dict(state)
        energy, constant = frequency_energy(model.W_E[:p])
        with torch.no_grad():
            logits = model(tokens)
        restricted, excluded = restricted_and_excluded_loss(logits, labels, data.train, keys)
        values = {
            "share": top_share(energy, constant, top),
            "restricted": restricted,
            "excluded": excluded,
            "train_loss": float(cross_entropy_f64(logits[train], labels[train])),
        }
        measures["steps"].append(step)
        for name, value in values.items():
            measures[name].append(value)
        ctx.log_metric("top_frequencies_norm_share", values["share"], step)
        ctx.log_metric("restricted_loss", restricted, step)
        ctx.log_metric("excluded_loss", excluded, step)
    measures.update(final_energy=final_energy, key_frequencies=keys)
    return measures


def _summarise(params: Params, logged, history, measures) -> tuple[dict[str, float], dict[str, Any]]:
    train_99 = _first(logged, history["train_accuracy"], ACCURATE)
    test_99 = _first(logged, history["test_accuracy"], ACCURATE)
    steps = measures["steps"]
    memorised = _first_from(steps, train_99)
    formed = _first(steps, measures["restricted"], RESTRICTED_FORMED, below=True)
    peak = max(range(memorised, len(steps)), key=measures["excluded"].__getitem__)  # after memorisation
    final_energy = measures["final_energy"]
    metrics: dict[str, float] = {
        "train_accuracy": history["train_accuracy"][-1],
        "test_accuracy": history["test_accuracy"][-1],
        "train_loss": history["train_loss"][-1],
        "test_loss": history["test_loss"][-1],
        "weight_norm": history["weight_norm"][-1],
        "top_frequencies_norm_share": measures["share"][-1],
        "initial_top_frequencies_norm_share": measures["share"][0],
        "memorised_top_frequencies_norm_share": measures["share"][memorised],
        "n_key_frequencies": len(measures["key_frequencies"]),
        "restricted_loss": measures["restricted"][-1],
        "excluded_loss": measures["excluded"][-1],
        "excluded_loss_at_memorisation": measures["excluded"][memorised],
        "max_excluded_loss": measures["excluded"][peak],
        "max_excluded_loss_step": steps[peak],
        "train_loss_at_max_excluded": measures["train_loss"][peak],
    }
    if train_99 is not None:
        metrics |= {
            "step_train_99": train_99,
            "memorisation_end_step": train_99,
            "weight_norm_at_memorisation": history["weight_norm"][logged.index(train_99)],
        }
    if test_99 is not None:
        metrics |= {"step_test_99": test_99, "cleanup_end_step": test_99}
    if train_99 is not None and test_99 is not None:
        metrics["grokking_delay_ratio"] = test_99 / train_99
    if formed is not None:
        metrics["circuit_formation_end_step"] = formed
    summary = {
        "preset": params.preset,
        "n_train_pairs": round(params.train_fraction * params.p**2),
        "n_test_pairs": params.p**2 - round(params.train_fraction * params.p**2),
        "key_frequencies": measures["key_frequencies"],
        "frequency_norms": [round(math.sqrt(float(e)), 4) for e in final_energy],
        "checkpoint_steps": steps[1:],
        "progress_measures": {
            "steps": steps,
            "top_frequencies_norm_share": [round(v, 4) for v in measures["share"]],
            "restricted_loss": [round(v, 5) for v in measures["restricted"]],
            "excluded_loss": [round(v, 5) for v in measures["excluded"]],
            "train_loss": [round(v, 6) for v in measures["train_loss"]],
        },
        "phase_rules": {
            "memorisation_end": f"first logged step with train accuracy >= {ACCURATE}",
            "circuit_formation_end": f"first checkpoint with restricted loss < {RESTRICTED_FORMED} nats",
            "cleanup_end": f"first logged step with test accuracy >= {ACCURATE}",
        },
        "checkpoint_format": "safetensors of the OneLayerTransformer state dict (W_E [p+1, d_model], W_pos, W_Q, "
        "W_K, W_V [head, d_model, d_head], W_O [head, d_head, d_model], W_in, b_in, W_out, b_out, W_U "
        "[d_model, p]); meta: step, p",
    }
    return metrics, summary


def findings(params: Params, metrics: dict, summary: dict) -> list[str]:
    train_99, test_99 = metrics.get("step_train_99"), metrics.get("step_test_99")
    setup = (
        f"a one-layer transformer on a + b mod {params.p}, trained full batch on {summary['n_train_pairs']:,} of "
        f"{params.p**2:,} pairs for {params.steps:,} steps"
    )
    if train_99 is None:
        lines = [f"It did not even memorise: {setup}, train accuracy ended at {metrics['train_accuracy']:.0%}."]
    elif test_99 is None:
        lines = [
            f"It memorised but did not generalise: {setup}; train accuracy reached 99% at step {train_99:,}, test "
            f"accuracy ended at {metrics['test_accuracy']:.0%}."
        ]
    else:
        ratio = metrics["grokking_delay_ratio"]
        verdict = "It grokked" if ratio >= 3 else "It generalised without much delay"
        lines = [
            f"{verdict}: {setup}; train accuracy reached 99% at step {train_99:,}, test accuracy at step "
            f"{test_99:,} ({ratio:.1f}x later), ending at {metrics['test_accuracy']:.1%}."
        ]
    keys = summary["key_frequencies"]
    top = params.n_top_frequencies
    lines.append(
        f"The final embedding is sparse in the Fourier basis: its top {top} frequencies carry "
        f"{metrics['top_frequencies_norm_share']:.0%} of its squared norm (at memorisation "
        f"{metrics['memorised_top_frequencies_norm_share']:.0%}, at initialisation "
        f"{metrics['initial_top_frequencies_norm_share']:.0%}); key frequencies: "
        f"{', '.join(str(k) for k in keys) if keys else 'none'}."
    )
    lines.append(
        f"Excluded loss (logits without the key frequencies, training pairs) rose from "
        f"{metrics['excluded_loss_at_memorisation']:.2f} nats at memorisation to {metrics['max_excluded_loss']:.2f} "
        f"at step {metrics['max_excluded_loss_step']:,}, while the train loss there was "
        f"{metrics['train_loss_at_max_excluded']:.3f}; the final restricted loss is {metrics['restricted_loss']:.3f}."
    )
    phases = [
        ("memorisation", metrics.get("memorisation_end_step")),
        ("circuit formation", metrics.get("circuit_formation_end_step")),
        ("clean-up", metrics.get("cleanup_end_step")),
    ]
    known = [f"{name} ends at step {step:,}" for name, step in phases if step is not None]
    if known:
        lines.append("Phases: " + "; ".join(known) + ".")
    lines.append(
        f"The weight norm fell from {metrics.get('weight_norm_at_memorisation', float('nan')):.1f} at memorisation "
        f"to {metrics['weight_norm']:.1f} at the end."
        if "weight_norm_at_memorisation" in metrics
        else f"The weight norm ended at {metrics['weight_norm']:.1f}."
    )
    return lines


# -- figures ------------------------------------------------------------------------------------------------------

_PHASE_COLOURS = ("rgba(99,110,250,0.12)", "rgba(239,85,59,0.12)", "rgba(0,204,150,0.12)")


def _shade_phases(fig: go.Figure, metrics: dict, first_step: int, axes: tuple[str, ...] = ("",)) -> None:
    """Shade each phase on the log-step axes `axes` ("" for x/y, "2" for x2/y2) and name it on the first.

    Plotly.js places a shape on a log axis by its data value but an annotation by the value's log10, so each
    rectangle gets steps and its label log10(step); labels are staggered, as a phase can be narrow."""
    bounds = [first_step, metrics.get("memorisation_end_step"), metrics.get("circuit_formation_end_step"),
              metrics.get("cleanup_end_step")]  # fmt: skip
    names = ("memorisation", "circuit formation", "clean-up")
    for i, name in enumerate(names):
        start, end = bounds[i], bounds[i + 1]
        if start is None or end is None or end <= start:
            continue
        for axis in axes:
            fig.add_shape(type="rect", xref=f"x{axis}", yref=f"y{axis} domain", x0=start, x1=end, y0=0, y1=1,
                          fillcolor=_PHASE_COLOURS[i], line_width=0, layer="below")  # fmt: skip
        fig.add_annotation(xref=f"x{axes[0]}", yref=f"y{axes[0]} domain", x=math.log10(start), y=1 - 0.07 * i,
                           text=name, showarrow=False, xanchor="left", yanchor="top", font={"size": 10})  # fmt: skip


def _curves_figure(steps: list[int], history: dict, metrics: dict) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss (nats)", "accuracy"))
    for split, dash in (("train", "solid"), ("test", "dash")):
        fig.add_trace(go.Scatter(x=steps, y=history[f"{split}_loss"], name=f"{split} loss",
                                 line={"dash": dash}), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=steps, y=history[f"{split}_accuracy"], name=f"{split} accuracy",
                                 line={"dash": dash}), row=1, col=2)  # fmt: skip
    fig.update_xaxes(type="log", title_text="step")
    fig.update_yaxes(type="log", row=1, col=1)
    _shade_phases(fig, metrics, steps[0], axes=("2", ""))
    fig.update_layout(title="Grokking: train and test loss and accuracy (log steps)", height=420)
    return fig


def _fourier_figure(energy: torch.Tensor, keys: list[int]) -> go.Figure:
    norms = energy.sqrt().tolist()
    colours = ["crimson" if k in set(keys) else "steelblue" for k in range(1, len(norms) + 1)]
    fig = go.Figure(go.Bar(x=list(range(1, len(norms) + 1)), y=norms, marker_color=colours))
    fig.update_layout(
        title="Final embedding W_E: norm per Fourier frequency (key frequencies in red)",
        xaxis_title="frequency k", yaxis_title="norm of the cos and sin components", height=380,
    )  # fmt: skip
    return fig


def _measures_figure(measures: dict, metrics: dict) -> go.Figure:
    steps = measures["steps"][1:]  # step 0 has no place on a log axis
    fig = go.Figure()
    for name, label in (("train_loss", "train loss"), ("restricted", "restricted loss"),
                        ("excluded", "excluded loss")):  # fmt: skip
        fig.add_trace(go.Scatter(x=steps, y=measures[name][1:], name=label, mode="lines+markers"))
    _shade_phases(fig, metrics, steps[0])
    fig.update_xaxes(type="log", title_text="step")
    fig.update_yaxes(type="log", title_text="loss (nats)")
    fig.update_layout(title="Progress measures: restricted and excluded loss, phases shaded", height=420)
    return fig
