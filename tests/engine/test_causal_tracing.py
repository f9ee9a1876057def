"""The facts dataset, the causal-tracing analysis and the causal_tracing kind on tiny models (seconds each)."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError

from experiments.engine.analysis.ranks import spearman
from experiments.engine.analysis.tracing import (
    CATEGORIES,
    Site,
    noise_corruption,
    position_categories,
    recovered_by_category,
    resample_corruption,
    trace,
)
from experiments.engine.facts import (
    PAD,
    Facts,
    fact_prompts,
    fact_world,
    facts_batch,
    longest_sequence,
    training_sequences,
    vocabulary_size,
    word_encoder,
)
from experiments.engine.models import NativeConfig, build_native
from experiments.engine.training import TrainingParams

SMALL_FACTS = Facts(n_subjects=24, n_relations=2, n_attributes=4, seed=5)
TINY_MODEL = {
    "n_layers": 2, "n_heads": 2, "d_model": 32, "d_head": 16, "d_mlp": 64, "n_ctx": 16, "d_vocab": 128,
    "attn_only": False,
}  # fmt: skip
TINY_TRAINING = {
    "model": TINY_MODEL, "data": SMALL_FACTS.model_dump(), "steps": 60, "batch_size": 16, "warmup_steps": 5,
    "n_checkpoints": 1, "eval_every": 60,
}  # fmt: skip


# -- the facts dataset -------------------------------------------------------------------------------------------


def test_a_facts_world_is_the_same_for_the_same_params_and_differs_with_its_seed():
    assert fact_world(Facts(seed=3)) == fact_world(Facts(seed=3))
    assert fact_world(Facts(seed=3)).subjects != fact_world(Facts(seed=4)).subjects


def test_subjects_are_distinct_prefix_free_and_of_every_length():
    world = fact_world(Facts(n_subjects=120, n_name_words=64))
    subjects = set(world.subjects)
    assert len(subjects) == 120
    # At most a quarter of the name-words are one-word subjects; the other lengths come equally often.
    assert [sum(len(s) == n for s in world.subjects) for n in (1, 2, 3)] == [16, 64, 40]
    assert not any(s[:k] in subjects for s in subjects for k in range(1, len(s)))  # no subject starts another
    assert {len(s) for s in fact_world(Facts(n_subjects=30, max_subject_words=1, n_name_words=30)).subjects} == {1}
    with pytest.raises(ValidationError, match="at most 16 subjects"):
        Facts(n_subjects=30, max_subject_words=1)


def test_held_out_paraphrases_are_new_combinations_of_words_seen_in_training():
    world = fact_world(Facts(n_relations=6))
    train = [t for t in world.templates if not t.held_out and not t.cued]
    held_out = [t for t in world.templates if t.held_out]
    assert len(held_out) == 6 * 3 and len(train) == 6 * 9
    assert sum(t.cued for t in world.templates) == 6 and not any(t.cued and t.held_out for t in world.templates)
    train_words = {w for t in train for w in (*t.prefix, *t.phrase)}
    train_pairs = {(t.prefix, t.phrase) for t in train}
    for template in held_out:
        assert set(template.prefix) | set(template.phrase) <= train_words
        assert (template.prefix, template.phrase) not in train_pairs


def test_a_prompt_marks_its_subject_and_stops_before_the_attribute():
    world = fact_world(SMALL_FACTS)
    prompts = fact_prompts(world, held_out=True, encode=word_encoder(world))
    assert len(prompts) == 24 * 2 * 3
    words = [world.vocabulary[i] for i in prompts.tokens[0, : prompts.last[0] + 1]]
    subject = world.subjects[int(prompts.subject[0])]
    assert tuple(words[prompts.subject_start[0] : prompts.subject_end[0]]) == subject
    assert prompts.subject_start.min() >= 4  # BOS and a prefix of at least three words come first
    assert (prompts.last - prompts.subject_end >= 0).all()
    relation = world.templates[int(prompts.template[0])].relation
    assert world.vocabulary[prompts.answer[0]] == world.attribute(int(prompts.subject[0]), relation)


def test_training_batches_put_the_loss_on_the_attribute_of_training_templates():
    sequences, targets = training_sequences(SMALL_FACTS)
    assert sequences.shape == (24 * 2 * 10, longest_sequence(SMALL_FACTS))  # 9 templates and the cued one
    world = fact_world(SMALL_FACTS)
    cued = [row for row, target in zip(sequences, targets, strict=True) if world.vocabulary[row[target - 1]] in
            {w for s in world.subjects for w in s} and world.vocabulary[row[1]] == "the"]  # fmt: skip
    assert len(cued) == 24 * 2  # "the city of <subject> | <city>": the attribute right after the subject
    tokens, read, mask = facts_batch(SMALL_FACTS, batch=32, generator=torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [1] * 32
    assert torch.equal(read, (tokens != PAD) & (torch.arange(tokens.shape[1]) > 0))  # every token after BOS
    attribute_only = Facts(**{**SMALL_FACTS.model_dump(), "loss_on": "attribute"})
    _, read, only = facts_batch(attribute_only, batch=8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(read, only)
    attributes = {world.vocabulary.index(a) for r in range(2) for a in world.vocabulary if a in _attributes(r)}
    assert set(tokens[mask].tolist()) <= attributes
    assert (tokens[:, -1] == PAD).any()  # padded to the longest fact


def _attributes(relation: int) -> set[str]:
    from experiments.engine.facts import RELATIONS

    return set(RELATIONS[relation].attributes[: SMALL_FACTS.n_attributes])


def test_training_params_refuse_a_model_too_small_for_the_facts():
    with pytest.raises(ValidationError, match="d_vocab to at least"):
        TrainingParams(model={**TINY_MODEL, "d_vocab": 32}, data=SMALL_FACTS)
    with pytest.raises(ValidationError, match="n_ctx to at least"):
        TrainingParams(model={**TINY_MODEL, "n_ctx": 8}, data=SMALL_FACTS)
    assert vocabulary_size(SMALL_FACTS) <= 128


# -- the analysis -------------------------------------------------------------------------------------------------


def test_positions_fall_in_romes_categories():
    # BOS, 3 prefix words, a 3-token subject at 4..6, 3 more words: the last at 9.
    categories = position_categories(torch.tensor([4]), torch.tensor([7]), torch.tensor([9]), 11)[0].tolist()
    names = [CATEGORIES[c] if c >= 0 else None for c in categories]
    assert names == [
        None, "before the subject", "before the subject", "before the subject", "first subject token",
        "middle subject tokens", "last subject token", "first token after", "further tokens", "last token", None,
    ]  # fmt: skip
    one_token = position_categories(torch.tensor([2]), torch.tensor([3]), torch.tensor([4]), 5)[0].tolist()
    assert [CATEGORIES[c] for c in one_token[1:]] == [
        "before the subject", "last subject token", "first token after", "last token",
    ]  # fmt: skip


def test_spearman_matches_the_textbook_values_with_ties():
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([4.0, 3, 2, 1])) == pytest.approx(-1.0)
    # Ranks [1.5, 1.5, 3, 4] against [1, 2, 3, 4]: Pearson of the ranks.
    assert spearman(torch.tensor([0.0, 0, 1, 2]), torch.tensor([1.0, 2, 3, 4])) == pytest.approx(0.9486833)
    assert spearman(torch.tensor([1.0, 1, 1]), torch.tensor([1.0, 2, 3])) != spearman(torch.ones(3), torch.ones(3))


@pytest.fixture(scope="module")
def tiny_setup():
    torch.manual_seed(0)
    model = build_native(NativeConfig(**TINY_MODEL), seed=1)
    world = fact_world(SMALL_FACTS)
    prompts = fact_prompts(world, held_out=True, encode=word_encoder(world)).select(range(0, 48, 3))
    return model, prompts


def test_restoring_the_last_layers_output_at_the_last_token_restores_the_clean_run(tiny_setup):
    model, prompts = tiny_setup
    corruption = noise_corruption(
        prompts.tokens, prompts.subject_mask, std=1.0, samples=3, generator=torch.Generator().manual_seed(0),
        d_model=model.cfg.d_model,
    )  # fmt: skip
    last_layer = Site("resid", model.cfg.n_layers - 1)
    result = trace(model, prompts.tokens, prompts.last, prompts.answer, corruption, [last_layer])
    assert (result.corrupt - result.clean).abs().max() > 1e-3  # the noise did something
    for b in range(len(prompts)):
        restored = result.restored[last_layer][prompts.last[b], b]
        assert restored == pytest.approx(float(result.clean[b]), abs=1e-5)
    # Nothing flows back in time: a state before the subject is the same clean or corrupted.
    categories = position_categories(prompts.subject_start, prompts.subject_end, prompts.last, prompts.tokens.shape[1])
    recovered = recovered_by_category(result, categories, last_layer)
    assert recovered[CATEGORIES.index("before the subject")] == pytest.approx(0.0, abs=1e-5)
    assert recovered[CATEGORIES.index("last token")] == pytest.approx(1.0, abs=1e-4)


def test_batched_head_restoration_equals_one_hooked_run_per_position(tiny_setup):
    model, prompts = tiny_setup
    corrupt = torch.roll(prompts.tokens, 1, dims=0)  # not a matched partner; the arithmetic is what is tested
    site = Site("head", 1, 1)
    result = trace(model, prompts.tokens, prompts.last, prompts.answer, resample_corruption(corrupt), [site])
    _, cache = model.run_with_cache(prompts.tokens, names_filter=lambda n: n == site.hook)
    b, position = 3, int(prompts.subject_start[3])

    def restore(act, hook):
        act = act.clone()
        act[b, position, 1] = cache[site.hook][b, position, 1]
        return act

    with torch.no_grad():
        logits = model.run_with_hooks(corrupt, fwd_hooks=[(site.hook, restore)])
    expected = torch.softmax(logits[b, prompts.last[b]], -1)[prompts.answer[b]]
    assert result.restored[site][position, b] == pytest.approx(float(expected), abs=1e-5)


# -- the kind -----------------------------------------------------------------------------------------------------

KIND_TINY = {"training": TINY_TRAINING, "n_prompts": 8, "noise_samples": 2, "known_only": False}


def test_causal_tracing_trains_its_facts_model_and_reports_both_corruptions(local_runs):
    from experiments.engine.kinds import causal_tracing as kind

    _, result, ctx = local_runs.run("causal_tracing", KIND_TINY, seed=3)
    assert set(result.metrics) <= set(kind.METRICS) | {
        "facts_model_final_loss", "facts_model_facts_accuracy", "facts_model_paraphrase_accuracy",
    }  # fmt: skip
    assert result.metrics["n_prompts"] == 8
    assert -1 <= result.metrics["rank_correlation"] <= 1
    assert result.metrics["before_subject_recovery_noise"] == pytest.approx(0, abs=1e-4)
    maps = result.summary["maps"]
    assert set(maps) == {"noise", "resample"} and set(maps["noise"]) == {"resid", "attn", "mlp"}
    assert len(maps["noise"]["resid"]) == 2 and len(maps["noise"]["resid"][0]) == len(CATEGORIES)
    assert len(result.summary["heads"]["resample"]) == 4  # 2 layers x 2 heads
    assert {"tracing_maps", "head_maps", "tracing"} <= set(ctx.artifacts) and result.headline == "tracing_maps"
    assert "facts_model/loss" in ctx.series and "facts_model/attribute_loss" in ctx.series
    assert any("Spearman" in line for line in result.findings)


def test_causal_tracing_of_a_checkpoint_traces_the_facts_it_was_trained_on(local_runs):
    run_id, training, _ = local_runs.run("train_transformer", TINY_TRAINING, seed=1)
    assert 0 <= training.metrics["facts_accuracy"] <= 1 and "paraphrase_accuracy" in training.metrics
    model = {"source": "run", "run": run_id, "artifact": "checkpoint-60"}
    params = {"model": model, "n_prompts": 6, "noise_samples": 2, "known_only": False, "per_head": False}
    _, result, _ = local_runs.run("causal_tracing", params, seed=2)
    assert result.summary["facts"] == SMALL_FACTS.model_dump()
    assert "heads" not in result.summary and "top_head_recovery_noise" not in result.metrics


def test_attention_only_models_have_no_mlp_map(local_runs):
    model = {"source": "native", "config": {**TINY_MODEL, "attn_only": True}}
    params = {"model": model, "facts": SMALL_FACTS.model_dump(), "n_prompts": 4, "noise_samples": 1,
              "known_only": False, "per_head": False}  # fmt: skip
    _, result, _ = local_runs.run("causal_tracing", params)
    assert set(result.summary["maps"]["noise"]) == {"resid", "attn"}
    assert "mlp_last_subject_recovery_noise" not in result.metrics


def test_a_model_that_knows_too_few_facts_is_a_clear_error(local_runs):
    from experiments.engine.errors import EngineError

    model = {"source": "native", "config": TINY_MODEL}
    with pytest.raises(EngineError, match="known_only"):
        local_runs.run("causal_tracing", {"model": model, "facts": SMALL_FACTS.model_dump()})


def test_too_many_prompts_and_a_model_too_small_are_refused_naming_the_field():
    from experiments.engine.kinds.causal_tracing import Params, check_references

    too_many = Params(facts=SMALL_FACTS.model_dump(), model={"source": "native", "config": TINY_MODEL}, n_prompts=200)
    problems = check_references(too_many, runs=None)
    assert list(problems) == ["n_prompts"] and "144 held-out prompts" in problems["n_prompts"]
    small = Params(model={"source": "native", "config": {**TINY_MODEL, "d_vocab": 32}})
    assert list(check_references(small, runs=None)) == ["model"]
    assert check_references(Params(), runs=None) == {}


def test_a_facts_world_different_from_the_one_trained_here_is_refused():
    from experiments.engine.kinds.causal_tracing import Params

    with pytest.raises(ValidationError, match="trained here"):
        Params(facts={"seed": 9})


def test_the_kinds_figures_are_valid_plotly_json(local_runs):
    ctx = local_runs.contexts[1]
    figure = json.loads((ctx.artifact_dir / ctx.artifacts["tracing_maps"].path).read_text())
    assert len(figure["data"]) == 6  # noise and resampling x residual, attention, MLP
