"""Q-, K- and V-composition between every pair of heads in different layers, against three baselines.

Follows Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits": how much of what an earlier head writes (its OV circuit) lands in
what a later head reads through its queries (Q), keys (K) or values (V). A
trained model's scores are compared with a random model of the same shape,
with the model's own other pairs between the same layers, and with a
permutation test that shuffles the residual dimensions the writer writes to
(see `experiments.engine.analysis.composition`). A composition counts as
above chance only when it beats both the random model (3 sd) and its own
layers (2 sd); the lenient count against the random model alone is reported
beside it, because trained heads often all beat a random model. An induction
head K-composes with the previous-token head it relies on; in the project's
checks that pair stood out from its own layers in every 2-layer model that
formed the circuit (docs/science.md).
"""

from __future__ import annotations

from pydantic import Field

from experiments.engine.analysis.composition import MODES, RULE, composition
from experiments.engine.models import ModelRef, load_model
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.wording import head_name

KEY = "composition_scores"
TITLE = "Composition scores between heads (Q, K, V)"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 1800
TIME_LIMIT = 1860
METRICS = {
    **{f"max_{m.lower()}_composition": f"Strongest {m}-composition score of any head pair." for m in MODES},
    **{
        f"n_{m.lower()}_above_chance": f"{m}-compositions more than 3 sd above a random model's pairs and 2 sd above "
        "the model's other pairs between the same layers."
        for m in MODES
    },
    **{
        f"n_{m.lower()}_above_random_model": f"{m}-compositions more than 3 sd above a random model's pairs (lenient)."
        for m in MODES
    },
    **{f"baseline_{m.lower()}_mean": f"Mean {m}-composition of a random model of the same shape." for m in MODES},
}


class Params(KindParams):
    model: ModelRef = Field(description="The model to examine.")
    baseline_seed: int = Field(12345, ge=0, le=2**31 - 1, description="Seed of the random baseline model.")
    top_k: int = Field(12, ge=1, le=100, description="How many of the strongest compositions to name.")


def run(params: Params, ctx) -> KindResult:
    ctx.progress(0.05, "loading the model")
    model = load_model(params.model, ctx)
    ctx.progress(0.3, "computing composition scores and the random baseline")
    result = composition(model, baseline_seed=params.baseline_seed)
    ctx.check_cancelled()
    metrics = {}
    for mode in MODES:
        metrics[f"max_{mode.lower()}_composition"] = float(result.scores[mode].max())
        metrics[f"n_{mode.lower()}_above_chance"] = int(result.above_chance(mode).sum())
        metrics[f"n_{mode.lower()}_above_random_model"] = result.n_above_random(mode)
        metrics[f"baseline_{mode.lower()}_mean"] = result.baseline_mean[mode]
    ctx.save_artifact(
        "composition_scores",
        {
            **{m: s.contiguous() for m, s in result.scores.items()},
            **{f"{m}_own_z": z.contiguous() for m, z in result.own_z.items()},
        },
    )
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    # Rows: writer heads (layer, head); columns: reader heads.
    flat = {m: s.reshape(n_layers * n_heads, n_layers * n_heads) for m, s in result.scores.items()}
    ctx.save_artifact(
        "composition_heatmap", head_heatmaps(flat, title="Composition (rows: writer L*H+h, columns: reader)", zmax=None)
    )
    summary = {
        "strongest": result.strongest(params.top_k, seed=params.baseline_seed),
        "baseline": {m: {"mean": result.baseline_mean[m], "std": result.baseline_std[m]} for m in MODES},
        "chance_rule": RULE,
    }
    return KindResult(
        findings=findings(metrics, summary["strongest"], model.cfg.n_layers),
        metrics=metrics,
        headline="composition_heatmap",
        summary=summary,
    )


def findings(metrics: dict, strongest: list[dict], n_layers: int) -> list[str]:
    if n_layers < 2:
        return ["A 1-layer model has no head pairs that can compose (a reader must sit in a later layer)."]
    strict = ", ".join(f"{m} {metrics[f'n_{m.lower()}_above_chance']}" for m in MODES)
    lenient = ", ".join(f"{m} {metrics[f'n_{m.lower()}_above_random_model']}" for m in MODES)
    lines = [
        f"Compositions above chance (3 sd above a random model and 2 sd above the model's own pairs): {strict}.",
        f"Against the random model alone (lenient): {lenient}.",
    ]
    for row in strongest[:2]:
        p = f", permutation p = {row['permutation_p']:.3g}" if "permutation_p" in row else ""
        lines.append(
            f"Strong {row['mode']}-composition: {head_name(*row['writer'])} writes to {head_name(*row['reader'])} "
            f"(score {row['score']:.3f}, {row['sigmas_above_random_model']:.1f} sd above a random model, "
            f"{row['sigmas_above_own_layers']:.1f} above its own layers{p})."
        )
    return lines
