"""Research claims the interpretability kinds must reproduce, on seeds nobody tuned with, at the kinds' defaults.

Olsson et al. 2022 ("In-context Learning and Induction Heads") and Elhage et al.
2021 ("A Mathematical Framework for Transformer Circuits"): a two-layer
attention-only transformer forms induction heads, which K-compose with a
previous-token head in the layer below, make repeated text predictable, and
form in a phase change visible in the training trajectory; a one-layer model
cannot form them.

TEST_SEEDS were drawn once, at random, from 0..10^9 (`secrets.randbelow`) after
the defaults were settled, and were never used to tune anything. Each claim is
checked on all five, at the strength the kinds' descriptions state ("4 of 5"
where a seed may legitimately be slow); docs/science.md lists the tuning seeds
and what each test seed gave.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch
from safetensors.torch import load_file

from experiments.engine.training import SMALL_ATTN_ONLY

pytestmark = pytest.mark.slow

TEST_SEEDS = (143399875, 443286982, 485787925, 123046593, 774199444)
MODELS = {  # name: model override of train_transformer's default
    "two_layer": {},
    "two_layer_vocab48": {"d_vocab": 48},
    "two_layer_vocab96": {"d_vocab": 96},
    "one_layer": {"n_layers": 1},
}
# A configuration known to learn a shifted copying circuit (layer-0 heads leaning to q-2 and q-3, layer-1
# heads reading the earlier copy three after the current token's twin; the induction score stays near 0): the
# settings this project used before its defaults were made robust, on a seed an outside review found it with.
SHIFTED_CIRCUIT = ({"model": {"d_vocab": 96}, "warmup_steps": 50}, 2718)


def _train(job: tuple[str, dict, int, str]):
    """Train in a worker process (one thread each, so two run side by side on two cores)."""
    from pathlib import Path

    from tests.engine.conftest import LocalRuns

    torch.set_num_threads(1)
    name, params, seed, root = job
    runs = LocalRuns(Path(root) / f"{name}-{seed}")
    _, result, ctx = runs.run("train_transformer", params, seed=seed)
    return name, seed, result, ctx


@pytest.fixture(scope="module")
def training(local_runs, tmp_path_factory):
    """Every model the claims need, trained two at a time: {(name, seed): (run id in local_runs, its result)}."""
    root = tmp_path_factory.mktemp("science")
    jobs = [(name, {"model": override}, seed, str(root)) for name, override in MODELS.items() for seed in TEST_SEEDS]
    jobs.append(("shifted", SHIFTED_CIRCUIT[0], SHIFTED_CIRCUIT[1], str(root)))
    with ProcessPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(_train, jobs))
    return {(name, seed): (local_runs.adopt(ctx), result) for name, seed, result, ctx in done}


@pytest.fixture(scope="module")
def trained(training):
    return {key: run_id for key, (run_id, _) in training.items()}


def final(run_id: int) -> dict:
    return {"source": "run", "run": run_id, "artifact": "checkpoint-3000"}


@pytest.fixture(scope="module")
def heads(local_runs, trained):
    """head_detection of the last checkpoint of every model trained with the defaults."""
    return {
        key: local_runs.run("head_detection", {"model": final(run_id)})[1]
        for key, run_id in trained.items()
        if key[0] in MODELS
    }


@pytest.fixture(scope="module")
def trajectories(local_runs, trained):
    keys = [(name, seed) for name in ("two_layer", "one_layer") for seed in TEST_SEEDS]
    return {key: local_runs.run("checkpoint_pca", {"run": trained[key]})[1] for key in keys}


def seeds_where(heads, name: str, holds) -> list[int]:
    return [seed for seed in TEST_SEEDS if holds(heads[(name, seed)])]


def test_defaults_are_the_small_model():
    assert (SMALL_ATTN_ONLY.n_layers, SMALL_ATTN_ONLY.n_heads, SMALL_ATTN_ONLY.d_vocab) == (2, 4, 64)


@pytest.mark.parametrize("name", ["two_layer", "two_layer_vocab48"])
def test_two_layer_models_form_an_induction_head_in_at_least_4_of_5_seeds(heads, name):
    formed = seeds_where(heads, name, lambda r: r.metrics["max_induction_score"] >= 0.5)
    assert len(formed) >= 4, {s: round(heads[(name, s)].metrics["max_induction_score"], 3) for s in TEST_SEEDS}
    for seed in formed:
        induction_layers = {h["layer"] for h in heads[(name, seed)].summary["heads"] if "induction" in h["types"]}
        assert induction_layers == {1}  # induction needs a layer below to read from


@pytest.mark.parametrize("name", ["two_layer", "two_layer_vocab48", "two_layer_vocab96"])
def test_every_two_layer_model_learns_in_context(heads, name):
    for seed in TEST_SEEDS:
        metrics = heads[(name, seed)].metrics
        assert metrics["repeated_second_half_loss"] < 0.4 * metrics["repeated_first_half_loss"], seed


def test_vocab_96_models_form_a_copying_circuit_in_at_least_4_of_5_seeds(heads):
    formed = seeds_where(heads, "two_layer_vocab96", lambda r: r.metrics["max_copying_score"] >= 0.5)
    scores = {s: round(heads[("two_layer_vocab96", s)].metrics["max_copying_score"], 3) for s in TEST_SEEDS}
    assert len(formed) >= 4, scores


def test_induction_heads_are_ov_copying_heads_and_the_most_ov_copying_of_their_model(heads):
    """Elhage et al. 2021: an induction head's OV circuit copies the token it attends to (mostly positive
    eigenvalues). The layer-0 heads of these models lean positive too (0.34-0.83 on the test seeds, untrained
    heads within +-0.23), so the claim is that every induction head is an OV-copying head and outscores every
    other head, not that OV copying alone finds induction heads (docs/science.md)."""

    def holds(result) -> bool:
        rows = result.summary["heads"]
        induction = [row["ov_copying"] for row in rows if "induction" in row["types"]]
        others = [row["ov_copying"] for row in rows if "induction" not in row["types"]]
        return bool(induction) and min(induction) >= 0.7 and min(induction) > max(others)

    scores = {
        seed: sorted(round(row["ov_copying"], 2) for row in heads[("two_layer", seed)].summary["heads"])
        for seed in TEST_SEEDS
    }
    assert len(seeds_where(heads, "two_layer", holds)) >= 4, scores


def test_one_layer_models_form_no_induction_head_and_barely_learn_in_context(heads):
    for seed in TEST_SEEDS:
        metrics = heads[("one_layer", seed)].metrics
        assert metrics["max_induction_score"] < 0.2, seed
        assert metrics["max_copying_score"] < 0.2, seed
        assert metrics["repeated_second_half_loss"] > 0.85 * metrics["repeated_first_half_loss"], seed


def test_one_layer_models_cannot_predict_copied_segments_by_position(training):
    """The copies land at random distances, so position alone does not help: one layer stays near chance."""
    chance = math.log(SMALL_ATTN_ONLY.d_vocab - 1)
    for seed in TEST_SEEDS:
        one, two = training[("one_layer", seed)][1].metrics, training[("two_layer", seed)][1].metrics
        # It can only favour tokens seen in the context; it rarely picks the right one. Two layers find the
        # earlier copy and read what followed it.
        assert one["copied_segment_accuracy"] < 0.3, seed
        assert one["copied_segment_loss"] > 0.7 * chance, seed
        assert two["copied_segment_loss"] < 0.5 * one["copied_segment_loss"], seed


def test_the_shifted_circuit_shows_as_copying_with_its_offsets(local_runs, trained):
    """Induction scores miss this circuit; the copying and look-back families find it and name its offsets."""
    result = local_runs.run("head_detection", {"model": final(trained[("shifted", SHIFTED_CIRCUIT[1])])})[1]
    assert result.metrics["max_induction_score"] < 0.2
    assert result.metrics["repeated_second_half_loss"] < 0.4 * result.metrics["repeated_first_half_loss"]
    layer_copying = result.summary["circuit"]["layer_copying"]
    assert layer_copying[1] >= 0.45 and layer_copying[0] < 0.1, layer_copying
    rows = result.summary["heads"]
    reader = max((h for h in rows if h["layer"] == 1), key=lambda h: h["copying"])
    writer = max((h for h in rows if h["layer"] == 0), key=lambda h: h["look_back"])
    assert reader["copying"] >= 0.35 and reader["copying_offset"] == 3, reader
    assert writer["look_back_offset"] in (2, 3), writer


def test_one_layer_trajectories_have_no_change_point_in_at_least_4_of_5_seeds(trajectories):
    quiet = [s for s in TEST_SEEDS if trajectories[("one_layer", s)].metrics["n_change_points"] == 0]
    assert len(quiet) >= 4, {s: trajectories[("one_layer", s)].summary["change_points"] for s in TEST_SEEDS}


def test_two_layer_change_point_falls_within_25_percent_of_induction_formation(trajectories):
    hits = []
    for seed in TEST_SEEDS:
        metrics = trajectories[("two_layer", seed)].metrics
        formation = metrics.get("induction_formation_step")
        hits.append(
            formation is not None
            and "change_point_step" in metrics
            and abs(metrics["change_point_step"] - formation) <= 0.25 * formation
        )
    assert sum(hits) >= 4, {s: trajectories[("two_layer", s)].metrics for s in TEST_SEEDS}


def _formed(heads) -> list[int]:
    return seeds_where(heads, "two_layer", lambda r: r.metrics["max_induction_score"] >= 0.5)


def test_induction_head_k_composes_with_its_previous_token_head_against_every_baseline(local_runs, trained, heads):
    for seed in _formed(heads):
        rows = heads[("two_layer", seed)].summary["heads"]
        induction = max((h for h in rows if h["layer"] == 1), key=lambda h: h["induction"])
        previous = max((h for h in rows if h["layer"] == 0), key=lambda h: h["previous_token"])
        assert "previous_token" in previous["types"], seed
        _, result, ctx = local_runs.run("composition_scores", {"model": final(trained[("two_layer", seed)])})
        saved = load_file(str(ctx.artifact_dir / ctx.artifacts["composition_scores"].path))
        pair = (previous["layer"], previous["head"], induction["layer"], induction["head"])
        baseline = result.summary["baseline"]["K"]
        assert float(saved["K"][pair]) > baseline["mean"] + 3 * baseline["std"], seed
        # Above most of the same layers' pairs; how far varies (robust z 1.5 to 8 across seeds, docs/science.md).
        assert float(saved["K_own_z"][pair]) > 1, seed
        named = [r for r in result.summary["strongest"] if (*r["writer"], *r["reader"]) == pair and r["mode"] == "K"]
        assert named and named[0]["permutation_p"] <= 0.01, (seed, named)


def test_ablating_the_circuit_costs_more_than_any_other_head(local_runs, trained, heads):
    for seed in _formed(heads):
        rows = heads[("two_layer", seed)].summary["heads"]
        roles = {"induction", "previous_token", "copying", "look_back"}
        circuit = {(h["layer"], h["head"]) for h in rows if roles & set(h["types"])}
        ranking = local_runs.run("head_ablation", {"model": final(trained[("two_layer", seed)])})[1].summary["ranking"]
        top = ranking[0]
        assert (top["layer"], top["head"]) in circuit, (seed, top)
        assert top["loss_increase"] > 0.1, seed


def test_random_models_have_few_compositions_above_chance(local_runs):
    """The strict rule rarely fires on an untrained model (the lenient one is the random baseline itself)."""
    config = {**SMALL_ATTN_ONLY.model_dump(), "n_layers": 3}
    false_alarms = []
    for seed in TEST_SEEDS:
        model = {"source": "native", "config": config}
        metrics = local_runs.run("composition_scores", {"model": model}, seed=seed)[1].metrics
        false_alarms.append(sum(metrics[f"n_{m}_above_chance"] for m in "qkv"))
    pairs = 3 * 3 * 16  # modes x layer pairs x head pairs
    assert sum(false_alarms) / (len(TEST_SEEDS) * pairs) < 0.02, false_alarms


def rows_k_above_random(result) -> int:
    return next(r for r in result.summary["rows"] if r["depth"] == 2)["compositions_above_random_model"]["K"]


def test_depth_comparison_reports_the_circuit_only_with_depth(local_runs, trained, heads):
    seed = _formed(heads)[0]
    runs = [trained[("one_layer", seed)], trained[("two_layer", seed)]]
    result = local_runs.run("attention_depth_comparison", {"runs": runs})[1]
    metrics = result.metrics
    assert metrics["L1_n_induction_heads"] == 0 and metrics["L2_n_induction_heads"] >= 1
    assert metrics["L2_copied_segment_loss"] < 0.5 * metrics["L1_copied_segment_loss"]
    assert rows_k_above_random(result) >= 1
    rows = {row["depth"]: row for row in result.summary["rows"]}
    assert set(rows) == {1, 2}
    assert rows[2]["most_important_heads"][0]["types"]  # the most important head has a known role
    assert rows[2]["copying_heads"] and rows[2]["copying_heads"][0]["offset"] == 1
    # The findings say so in words, and each depth is a part with its own metrics and findings.
    assert result.findings[0].startswith("1 of 2 depths form induction heads: 2 layers ("), result.findings
    assert "1 layer (best" in result.findings[0] and result.findings[0].endswith("forms none."), result.findings
    parts = local_runs.contexts[max(local_runs.contexts)].parts
    assert [p["key"] for p in parts] == ["L1", "L2"]
    assert parts[1]["metrics"]["n_induction_heads"] == metrics["L2_n_induction_heads"]
    assert parts[0]["findings"][0].startswith("No induction head")
    # Progress moves through each model's part of the bar instead of sticking at the end of it.
    log = local_runs.contexts[max(local_runs.contexts)].reporter.progress_log
    second = [fraction for fraction, message in log if message.startswith("2 layers: checkpoint")]
    assert second == sorted(set(second)) and second[-1] - second[0] > 0.3
    assert log[-1][0] == pytest.approx(1.0)
