"""Do other models of the same size replicate the IOI circuit? (catalogue hypothesis #6)

Wang et al. 2022 ("Interpretability in the Wild") found in GPT-2 small a circuit for indirect object
identification: name movers at the end of the model copy the indirect object (IO) into the logits, S-inhibition
heads before them steer them away from the repeated subject, and induction and duplicate-token heads earlier
still detect the repetition. This kind runs the `ioi` analysis (`analysis.ioi.analyse_ioi`: logit difference
IO − S, per-head patching from the ABC prompts, direct logit attribution, role candidates by its documented
rules) on two to eight models, each one part of the run, and asks whether the models after the first (the
reference) show the same circuit:

- does it do the task as well (its logit difference over the reference's, clipped to [0, 1])?
- does it have name-mover heads at all?
- do its top-k heads by |patching effect| match the reference's by role (models of different shapes are not
  compared by head index: a head is described by its role, the sign of its effect and its depth fraction
  (layer + 0.5) / n_layers; see `analysis.ioi_replication`)?

`replication_score` (in [0, 1]) = the mean, over the models other than the reference, of
has_name_movers × logit_difference_ratio × role_matched_overlap (`ioi_replication.RULE`); it is left out when the
reference has no name-mover candidate or a logit difference <= 0 (nothing to replicate: a criterion on it is then
inconclusive), and `mean_score` gives the same mean regardless. Every model reads the
same prompts: the evaluation names are restricted to those every compared tokenizer writes as one token. By
default they are the training names of the synthetic models: on held-out names the first working recipe's model
(seed 1) had no name-mover candidate at all, so the comparison would measure generalisation (which the `ioi` kind
reports) instead of the circuit.

Without `models`, the run trains `seeds` models itself (`train`; by default the `ioi` kind's `IOI_TRAINING`, one
recipe for both kinds), with seeds run seed, run seed + 1, ..., each a part with its training series and final
loss; the first is the reference.

GPU configuration (a worker with the models under PRETRAINED_MODEL_DIRS, say /models): GPT-2 small first, as
the reference, then the models of the same size,

    {"models": [{"source": "pretrained", "name": "/models/gpt2"},
                {"source": "pretrained", "name": "/models/pythia-160m"},
                {"source": "pretrained", "name": "/models/opt-125m"}],
     "data": {"n_prompts": 256, "names": "all"}, "top_k": 10}

(all names, not only the held-out fifth: a pretrained model has no training names; top_k 10 because GPT-2
small's circuit has some 26 heads). The paper's numbers to compare the reference with: logit difference about
3.55, name movers 9.9, 9.6 and 10.0 among the top heads by patching.

How robust: see docs/science.md, "IOI replication" (the seeds of the synthetic check and what each gave).
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from pydantic import Field, model_validator

from experiments.engine.analysis.ioi import IOIAnalysis, analyse_ioi
from experiments.engine.analysis.ioi_replication import (
    DEPTH_TOLERANCE,
    ROLE_ORDER,
    RULE,
    UNLABELLED,
    Replication,
    compare,
    depth_fraction,
    top_heads,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.ioi import (
    MAX_PROMPT_WORDS,
    VOCABULARY,
    IOIPrompts,
    encoder_for,
    names_for,
    one_token_names,
    prompts_for,
)
from experiments.engine.kinds._inputs import model_shape
from experiments.engine.kinds.ioi import IOI_TRAINING, ROLE_NAMES
from experiments.engine.kinds.ioi import ROLE_COLORS as IOI_ROLE_COLORS
from experiments.engine.lean import to_bridge
from experiments.engine.models import (
    ArtifactResolver,
    ModelRef,
    NativeModelRef,
    PretrainedModelRef,
    RunModelRef,
    load_model,
    resolve_pretrained_dir,
)
from experiments.engine.params import KindParams
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.training import TrainingParams, train
from experiments.engine.wording import head_name, heads_text

KEY = "ioi_replication"
TITLE = "IOI circuit: do other models replicate it?"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3 * 3600
TIME_LIMIT = 3 * 3600 + 120
MIN_NAMES = 3  # an IOI prompt needs IO, S and the corrupting C
TRAINING_SHARE = 0.8  # of a trained model's part of the progress bar

METRICS = {
    "replication_score": "Mean over the models other than the reference (the first) of has_name_movers (0/1) × "
    "logit difference ratio (clipped to [0, 1]) × role-matched overlap of the top-k heads; in [0, 1]. Absent when "
    "the reference has no name-mover candidate or a logit difference <= 0: there is no circuit to replicate, and a "
    "criterion on it is then inconclusive.",
    "mean_score": "Mean of the per-model scores, reported even when the reference has no circuit to replicate.",
    "n_models": "Models compared, the reference included.",
    "n_with_name_movers": "Models with at least one name-mover candidate, the reference included.",
    "reference_logit_diff": "The reference's mean logit difference IO − S at END (nats).",
    "mean_logit_difference_ratio": "Mean over the other models of their logit difference over the reference's "
    "(clipped to [0, 1]).",
    "mean_role_matched_overlap": "Mean over the other models of the role-matched overlap of the top-k heads.",
    "min_score": "The lowest score of any model other than the reference.",
}
PART_METRICS = {
    "logit_diff": "Mean logit difference IO − S at END on the clean prompts (nats).",
    "accuracy": "Share of prompts where IO's logit is above S's.",
    "corrupt_logit_diff": "Mean logit difference on the ABC prompts (nats).",
    "n_name_movers": "Name-mover candidates.",
    "n_negative_name_movers": "Negative name-mover candidates.",
    "n_s_inhibition": "S-inhibition candidates.",
    "name_mover_depth": "Mean depth fraction (layer + 0.5) / n_layers of the name movers.",
    "top_head_depth": "Depth fraction of the head with the largest |patching effect|.",
    "logit_difference_ratio": "Other models: logit difference over the reference's, clipped to [0, 1].",
    "role_matched_overlap": "Other models: share of top-k heads matched one-to-one with the reference's by role, "
    f"sign of effect and depth fraction (within {DEPTH_TOLERANCE}).",
    "score": "Other models: has_name_movers × logit_difference_ratio × role_matched_overlap.",
    "final_loss": "Trained here: mean training loss over the last 50 steps (nats per token).",
}
SERIES = TRAINING_SERIES
ROLE_LABELS = {**ROLE_NAMES, UNLABELLED: "other"}
ROLE_SHORT = {"name_mover": "NM", "negative_name_mover": "NNM", "s_inhibition": "SI", "induction": "IND",
              "duplicate_token": "DT", "previous_token": "PT", UNLABELLED: ""}  # fmt: skip
ROLE_COLORS = {role: IOI_ROLE_COLORS[role] for role in ROLE_ORDER} | {UNLABELLED: IOI_ROLE_COLORS[""]}  # as `ioi`
ROLES = (*ROLE_ORDER, UNLABELLED)


class Params(KindParams):
    models: list[ModelRef] | None = Field(
        None,
        min_length=2,
        max_length=8,
        description="Models to compare (native, a run's checkpoint, pretrained from a local folder); the first is "
        "the reference whose circuit the others should replicate. None trains `seeds` models here.",
    )
    seeds: int = Field(
        2, ge=2, le=8, description="Without models: how many models to train here, with seeds run seed, run seed + "
        "1, ...; the first is the reference.",
    )  # fmt: skip
    train: TrainingParams = Field(
        IOI_TRAINING, description="Without models: how each model is trained (default: the project's IOI model on "
        "ioi_prompts).",
    )  # fmt: skip
    data: IOIPrompts = Field(
        IOIPrompts(names="train"), description="The evaluation prompts: every model reads the same prompts, with only "
        "the names every compared tokenizer writes as one token. The training names by default: circuits are compared "
        "where the models do the task (whether a synthetic model generalises to held-out names is the ioi kind's "
        "question); for pretrained models use all names.",
    )  # fmt: skip
    top_k: int = Field(5, ge=1, le=20, description="How many heads by |patching effect| each model's circuit has.")

    @model_validator(mode="after")
    def _trainable(self) -> Params:
        if self.models is None and (problem := word_model_problem(self.train.model.d_vocab, self.train.model.n_ctx)):
            raise ValueError(f"train.model: {problem}")
        return self


def word_model_problem(d_vocab: int, n_ctx: int) -> str | None:
    """Why a model without a tokenizer cannot read IOI prompts in the word vocabulary, or None."""
    if d_vocab < len(VOCABULARY):
        return f"IOI prompts need a vocabulary of at least {len(VOCABULARY)} words; the model has {d_vocab}."
    if n_ctx < MAX_PROMPT_WORDS:
        return f"IOI prompts are up to {MAX_PROMPT_WORDS} tokens; the model's context is {n_ctx}."
    return None


def _pretrained_names(ref: PretrainedModelRef, wanted: tuple[str, ...]) -> tuple[str, ...] | None:
    """The wanted names the model's tokenizer writes as one token; None when its folder cannot be read here
    (the worker reports that)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(resolve_pretrained_dir(ref.name)))
    except (ModelNotAvailable, OSError, ValueError):
        return None
    return one_token_names(tokenizer, wanted)


def shared_names(models: list, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], dict[int, str]]:
    """The wanted names every pretrained model in `models` writes as one token (native models read them all),
    and {index: why} for each model that leaves fewer than MIN_NAMES."""
    common, problems = set(wanted), {}
    for i, ref in enumerate(models):
        if not isinstance(ref, PretrainedModelRef) or (usable := _pretrained_names(ref, wanted)) is None:
            continue
        if len(usable) < MIN_NAMES:
            problems[i] = (
                f"Only {len(usable)} of the {len(wanted)} names are one token for this model's tokenizer; IOI "
                f"prompts need at least {MIN_NAMES}."
            )
        common &= set(usable)
    return tuple(name for name in wanted if name in common), problems


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: every model exists and can read IOI prompts (a word-vocabulary model is large
    enough; a tokenizer writes enough names as one token), and the tokenizers share at least three such names."""
    if params.models is None:
        return {}
    problems = {}
    for i, ref in enumerate(params.models):
        if isinstance(ref, PretrainedModelRef):
            continue
        try:
            shape = model_shape(ref, runs)
        except ModelNotAvailable as exc:
            problems[f"models.{i}"] = str(exc)
            continue
        if problem := word_model_problem(shape.d_vocab, shape.n_ctx):
            problems[f"models.{i}"] = problem
    wanted = names_for(params.data)
    names, unusable = shared_names(params.models, wanted)
    problems |= {f"models.{i}": why for i, why in unusable.items()}
    if not unusable and len(names) < MIN_NAMES:
        problems["models"] = (
            f"The models' tokenizers share only {len(names)} of the {len(wanted)} names as one token; IOI prompts "
            f"need at least {MIN_NAMES} that every model reads the same way."
        )
    return problems


class _SharedNames:
    """A model's prompt encoder that offers only the names every compared model writes as one token."""

    def __init__(self, encoder, names: tuple[str, ...]) -> None:
        self._encoder, self._names = encoder, frozenset(names)

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)

    def usable_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name for name in self._encoder.usable_names(names) if name in self._names)


class _Reseeded:
    """The run's context with another seed, so that each model trained here starts from its own."""

    def __init__(self, ctx, seed: int) -> None:
        self._ctx, self.seed = ctx, seed

    def __getattr__(self, name: str):
        return getattr(self._ctx, name)


def model_label(ref) -> str:
    if isinstance(ref, NativeModelRef):
        return "native model (untrained)"
    if isinstance(ref, RunModelRef):
        return f"run {ref.run} {ref.artifact}"
    return Path(ref.name).name or ref.name


def _sources(params: Params, ctx) -> list[tuple[str, object]]:
    """(label, loader(report) -> (model, {metric: value})) of each model, the reference first."""
    if params.models is not None:
        return [(model_label(ref), lambda report, ref=ref: (load_model(ref, ctx), {})) for ref in params.models]

    def trained(report, i: int):
        outcome = train(params.train, _Reseeded(ctx, ctx.seed + i), name_prefix=f"model{i}-", on_progress=report)
        return to_bridge(outcome.model, device=ctx.device).eval(), {"final_loss": outcome.final_loss}

    return [(f"seed {ctx.seed + i}", lambda report, i=i: trained(report, i)) for i in range(params.seeds)]


def run(params: Params, ctx) -> KindResult:
    """Each model is a part (`model0` is the reference): analysed, compared with the reference and stored as soon
    as it is done."""
    sources = _sources(params, ctx)
    names, unusable = shared_names(params.models or [], names_for(params.data))
    if unusable or len(names) < MIN_NAMES:
        raise EngineError(" ".join(unusable.values()) or f"The models share only {len(names)} one-token names.")
    share, rows, analyses = 1 / len(sources), [], []
    for i, (label, load) in enumerate(sources):
        ctx.check_cancelled()
        with ctx.part(f"model{i}", label) as part:
            trains = params.models is None
            analysis_start = share * (i + (TRAINING_SHARE if trains else 0))
            model, training = load(within(ctx.progress, share * i, analysis_start, f"{label}: training, "))
            report = within(ctx.progress, analysis_start, share * (i + 1), f"{label}: ")
            report(0.0, "patching every head")
            batch = prompts_for(params.data, _SharedNames(encoder_for(model), names), n_ctx=model.cfg.n_ctx)
            analysis = analyse_ioi(model, batch.to(ctx.device))
            analyses.append(analysis)
            replication = compare(analyses[0], analysis, params.top_k) if i else None
            row = model_row(label, analysis, replication, params.top_k)
            rows.append(row)
            part.metrics = part_metrics(row) | training
            part.findings = model_findings(row, rows[0])
            report(1.0, "analysed")
            del model
    metrics = run_metrics(rows)
    ctx.save_artifact("logit_differences", logit_difference_figure(rows))
    ctx.save_artifact("role_maps", role_map_figure(rows, analyses))
    ctx.save_artifact("top_heads_by_depth", depth_figure(rows))
    summary = {"rule": RULE, "top_k": params.top_k, "shared_names": len(names), "models": rows}
    return KindResult(findings=findings(rows, metrics), metrics=metrics, headline="logit_differences", summary=summary)


def model_row(label: str, analysis: IOIAnalysis, replication: Replication | None, k: int) -> dict:
    """What the comparison reports of one model (JSON)."""
    depth = lambda heads: [round(depth_fraction(layer, analysis.n_layers), 3) for layer, _ in heads]  # noqa: E731
    roles = {role: [list(map(int, h)) for h in analysis.roles.get(role, ())] for role in ROLE_ORDER}
    top = replication.top if replication else top_heads(analysis, k)
    row = {
        "label": label,
        "n_layers": analysis.n_layers,
        "n_heads": analysis.n_heads,
        "logit_diff": float(analysis.logit_diff),
        "accuracy": float(analysis.accuracy),
        "corrupt_logit_diff": float(analysis.corrupt_logit_diff),
        "roles": roles,
        "name_mover_depths": depth(roles["name_mover"]),
        "top_heads": [h.as_dict() for h in top],
    }
    if replication is not None:
        row |= {
            "has_name_movers": replication.has_name_movers,
            "logit_difference_ratio": replication.logit_difference_ratio,
            "role_matched_overlap": replication.role_matched_overlap,
            "score": replication.score,
            "matched": [{"reference": a.as_dict(), "model": b.as_dict()} for a, b in replication.matched],
        }
    return row


def part_metrics(row: dict) -> dict:
    depths = row["name_mover_depths"]
    values = {
        "logit_diff": row["logit_diff"],
        "accuracy": row["accuracy"],
        "corrupt_logit_diff": row["corrupt_logit_diff"],
        "n_name_movers": len(row["roles"]["name_mover"]),
        "n_negative_name_movers": len(row["roles"]["negative_name_mover"]),
        "n_s_inhibition": len(row["roles"]["s_inhibition"]),
        "name_mover_depth": sum(depths) / len(depths) if depths else None,
        "top_head_depth": row["top_heads"][0]["depth"] if row["top_heads"] else None,
    }
    values |= {name: row[name] for name in ("logit_difference_ratio", "role_matched_overlap", "score") if name in row}
    return {name: value for name, value in values.items() if value is not None}


def has_circuit(row: dict) -> bool:
    """Whether the reference has something to replicate: it does the task and has a name-mover candidate."""
    return row["logit_diff"] > 0 and bool(row["roles"]["name_mover"])


def run_metrics(rows: list[dict]) -> dict:
    """The run's metrics; replication_score only when the reference has a circuit to replicate (without it, a
    criterion on the score is inconclusive rather than refuted)."""
    others = rows[1:]
    score = {"replication_score": sum(r["score"] for r in others) / len(others)} if has_circuit(rows[0]) else {}
    return score | {
        "n_models": len(rows),
        "n_with_name_movers": sum(bool(r["roles"]["name_mover"]) for r in rows),
        "reference_logit_diff": rows[0]["logit_diff"],
        "mean_score": sum(r["score"] for r in others) / len(others),
        "mean_logit_difference_ratio": sum(r["logit_difference_ratio"] for r in others) / len(others),
        "mean_role_matched_overlap": sum(r["role_matched_overlap"] for r in others) / len(others),
        "min_score": min(r["score"] for r in others),
    }


# -- findings ---------------------------------------------------------------------------------------------------


def _heads_with_roles(heads: list[dict]) -> str:
    return ", ".join(
        f"{head_name(h['layer'], h['head'])} ({ROLE_LABELS[h['role']]}, depth {h['depth']:.2f}, {h['effect']:+.2f})"
        for h in heads
    )


def model_findings(row: dict, reference: dict) -> list[str]:
    """What one model's analysis found, and how it compares with the reference."""
    lines = [
        f"Logit difference {row['logit_diff']:.2f} (accuracy {row['accuracy']:.0%}; {row['corrupt_logit_diff']:.2f} "
        "on the ABC prompts)."
    ]
    movers = row["roles"]["name_mover"]
    lines.append(
        f"Name movers: {heads_text(movers)} (depth {', '.join(f'{d:.2f}' for d in row['name_mover_depths'])})."
        if movers
        else "No name-mover candidate."
    )
    lines.append(f"Top heads by |patching effect|: {_heads_with_roles(row['top_heads'])}.")
    if "score" in row:
        lines.append(
            f"Against {reference['label']}: logit difference ratio {row['logit_difference_ratio']:.2f}, "
            f"{len(row['matched'])} of its top heads matched by role and depth (overlap "
            f"{row['role_matched_overlap']:.2f}), name movers {'yes' if row['has_name_movers'] else 'no'}: score "
            f"{row['score']:.2f}."
        )
    return lines


def findings(rows: list[dict], metrics: dict) -> list[str]:
    """The comparison in words: the score, then each model against the reference, then the shared roles."""
    reference, others = rows[0], rows[1:]
    score = metrics.get("replication_score")
    lines = [
        (f"replication_score {score:.2f}" if score is not None else "No replication_score") + f": {len(others)} "
        f"{'model' if len(others) == 1 else 'models'} against the reference {reference['label']} (logit difference "
        f"{reference['logit_diff']:.2f}, accuracy {reference['accuracy']:.0%}, name movers "
        f"{heads_text(reference['roles']['name_mover'])})."
    ]
    if reference["logit_diff"] <= 0:
        lines.append(
            f"The reference does not do the task (logit difference {reference['logit_diff']:.2f} <= 0): there is no "
            "circuit to replicate, so every score is 0 and replication_score is left out (inconclusive)."
        )
    elif not reference["roles"]["name_mover"]:
        lines.append(
            "The reference has no name-mover candidate: it lacks the core of the paper's circuit, so there is nothing "
            "to replicate and replication_score is left out (inconclusive); the per-model scores are still shown."
        )
    for r in others:
        lines.append(
            f"{r['label']}: logit difference {r['logit_diff']:.2f} ({r['logit_difference_ratio']:.0%} of the "
            f"reference's, capped at 100%), name movers {heads_text(r['roles']['name_mover'])}, "
            f"{len(r['matched'])} of {len(r['top_heads'])} top heads matched by role: score {r['score']:.2f}."
        )
    shared = [role for role in ROLE_ORDER if all(any(h["role"] == role for h in r["top_heads"]) for r in rows)]
    lines.append(
        f"Roles among every model's top heads: {', '.join(ROLE_LABELS[role] for role in shared)}."
        if shared
        else "No role is among the top heads of every model."
    )
    return lines


# -- figures ----------------------------------------------------------------------------------------------------


def logit_difference_figure(rows: list[dict]) -> go.Figure:
    """Each model's logit difference on the clean and ABC prompts, and the factors of each other model's score."""
    labels = [r["label"] for r in rows]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["Logit difference IO − S at END", "Against the reference"],
        horizontal_spacing=0.12,
    )  # fmt: skip
    for name, key, color in (("clean prompts", "logit_diff", "#2563eb"), ("ABC prompts", "corrupt_logit_diff",
                                                                         "#9ca3af")):  # fmt: skip
        fig.add_trace(
            go.Bar(x=labels, y=[r[key] for r in rows], name=name, marker_color=color,
                   text=[f"{r['accuracy']:.0%}" if key == "logit_diff" else "" for r in rows],
                   hovertemplate="%{x}: %{y:.2f}<extra>" + name + "</extra>"),
            row=1, col=1,
        )  # fmt: skip
    others = rows[1:]
    factors = (("has name movers", lambda r: float(r["has_name_movers"]), "#fca5a5"),
               ("logit difference ratio", lambda r: r["logit_difference_ratio"], "#93c5fd"),
               ("role-matched overlap", lambda r: r["role_matched_overlap"], "#fdba74"),
               ("score (their product)", lambda r: r["score"], "#111827"))  # fmt: skip
    for name, value, color in factors:
        fig.add_trace(
            go.Bar(x=[r["label"] for r in others], y=[value(r) for r in others], name=name, marker_color=color),
            row=1, col=2,
        )  # fmt: skip
    fig.update_yaxes(title_text="nats (bar text: accuracy)", row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], title_text="0..1", row=1, col=2)
    fig.update_layout(title=f"IOI replication against {rows[0]['label']}", barmode="group", height=440)
    return fig


def role_map_figure(rows: list[dict], analyses: list[IOIAnalysis]) -> go.Figure:
    """Per model, a layer x head grid coloured by role; the text is the role's short name, the hover the
    patching effect."""
    cols = min(len(rows), 4)
    n_rows = -(-len(rows) // cols)
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=[r["label"] for r in rows], horizontal_spacing=0.06,
                        vertical_spacing=0.12)  # fmt: skip
    index = {role: i for i, role in enumerate(ROLES)}
    n = len(ROLES)
    scale = [[edge, ROLE_COLORS[role]] for i, role in enumerate(ROLES) for edge in (i / n, (i + 1) / n)]
    for i, (row, analysis) in enumerate(zip(rows, analyses, strict=True)):
        role_of = {(layer, head): role for role in reversed(ROLE_ORDER) for layer, head in row["roles"][role]}
        grid = [[role_of.get((layer, head), UNLABELLED) for head in range(row["n_heads"])]
                for layer in range(row["n_layers"])]  # fmt: skip
        fig.add_trace(
            go.Heatmap(
                z=[[index[role] for role in line] for line in grid],
                text=[[ROLE_SHORT[role] for role in line] for line in grid], texttemplate="%{text}",
                customdata=[[f"{ROLE_LABELS[role]}, patching {float(analysis.patching[layer, head]):+.3f}"
                             for head, role in enumerate(line)] for layer, line in enumerate(grid)],
                x=[f"H{h}" for h in range(row["n_heads"])], y=[f"L{layer}" for layer in range(row["n_layers"])],
                zmin=-0.5, zmax=n - 0.5, colorscale=scale, showscale=i == 0,
                colorbar={"tickvals": list(range(n)), "ticktext": [ROLE_LABELS[r] for r in ROLES]},
                hovertemplate="%{y}%{x}: %{customdata}<extra></extra>",
            ),
            row=i // cols + 1, col=i % cols + 1,
        )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Head roles per model (candidates by the ioi kind's rules)", height=320 * n_rows + 80)
    return fig


def depth_figure(rows: list[dict]) -> go.Figure:
    """Every model's top heads at their depth fraction, coloured by role, sized by |patching effect|: the
    structure the role-matched overlap compares. Heads of one layer are spread a little apart vertically."""
    placed = []  # (row index, vertical offset, head)
    for i, r in enumerate(rows):
        by_layer: dict[int, list[dict]] = {}
        for h in r["top_heads"]:
            by_layer.setdefault(h["layer"], []).append(h)
        for same in by_layer.values():
            placed += [(i, 0.15 * (j - (len(same) - 1) / 2), h) for j, h in enumerate(same)]
    biggest = [max((abs(h["effect"]) for h in r["top_heads"]), default=1.0) or 1.0 for r in rows]
    fig = go.Figure()
    for role in ROLES:
        points = [(i, offset, h) for i, offset, h in placed if h["role"] == role]
        if not points:
            continue
        fig.add_trace(
            go.Scatter(
                x=[h["depth"] for _, _, h in points], y=[i + offset for i, offset, _ in points], mode="markers",
                name=ROLE_LABELS[role],
                marker={"color": ROLE_COLORS[role], "size": [8 + 22 * abs(h["effect"]) / biggest[i]
                                                             for i, _, h in points],
                        "symbol": ["circle" if h["effect"] < 0 else "circle-open" for _, _, h in points],
                        "line": {"width": 2, "color": ROLE_COLORS[role]}},
                text=[f"{rows[i]['label']}: {head_name(h['layer'], h['head'])}, patching {h['effect']:+.3f}"
                      for i, _, h in points],
                hovertemplate="%{text}<extra>" + ROLE_LABELS[role] + "</extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(range=[0, 1], title_text="depth fraction (layer + 0.5) / n_layers")
    fig.update_yaxes(
        tickvals=list(range(len(rows))), ticktext=[r["label"] for r in rows], range=[len(rows) - 0.5, -0.5]
    )
    fig.update_layout(
        title="Top heads by |patching effect| (filled: carries the task; open: opposes it)",
        height=200 + 70 * len(rows),
    )
    return fig
