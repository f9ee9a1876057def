"""Synthetic dialogues with a built-in effect: a deterministic, balanced world; an effect of the realised size; text
every kind with default templates can write; and training wiring (meta, validation, metrics)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from pydantic import ValidationError

from experiments.engine.datasets import DatasetNotAvailable  # noqa: F401  (datasets imports the source first)
from experiments.engine.evals import prompts
from experiments.engine.evals.dialogues import (
    ANSWER_END,
    DIALOGUES_MODEL,
    REFUSAL_SENTENCE,
    Dialogues,
    dialogue_batch,
    dialogue_items,
    dialogue_vocabulary,
    expected_effect,
    longest_dialogue,
    training_dialogues,
)
from experiments.engine.evals.prompts import Prompt, plain_text
from experiments.engine.evals.words import BOS, PAD, WORDS_META_KEY, WordTokenizer
from experiments.engine.models import read_checkpoint_config
from experiments.engine.training import TrainingParams
from tests.engine.dialogue_models import train_dialogue_model

TRUTH, CONFORM, REFUSE = (Dialogues(behaviour=b) for b in ("truthfulness", "conformity", "refusal"))
NO_FLIPS = Dialogues(behaviour="truthfulness", flip_rates={"truthful": 0.05, "friendly and truthful": 0.05})


def _user_texts(data: Dialogues) -> list[tuple[str | None, str, str]]:
    """(system, user, answer start) of every prompt a kind with default params writes for the items."""
    items = dialogue_items(data)
    if data.behaviour == "truthfulness":
        personas = [*data.personas, prompts.BASELINE_PERSONA, prompts.FRIENDLY_PERSONA]
        return [
            (prompts.PERSONA_SYSTEM.format(persona=p), prompts.STATEMENT_USER.format(statement=i["statement"]),
             prompts.STATEMENT_ANSWER_PREFIX)
            for p in personas for i in items
        ]  # fmt: skip
    if data.behaviour == "conformity":
        return [
            (prompts.CONFORMITY_SYSTEM, t.format(action=i["action"]), prompts.CONFORMITY_ANSWER_PREFIX)
            for t in (prompts.AFFIRMATIVE_USER, prompts.DISCONFIRMING_USER) for i in items
        ]  # fmt: skip
    return [(prompts.REFUSAL_SYSTEM, prompts.REQUEST_USER.format(request=i["request"]), "") for i in items]


@pytest.mark.parametrize("behaviour", ["truthfulness", "conformity", "refusal"])
def test_the_world_is_the_same_for_a_seed_and_another_for_another_seed(behaviour):
    first, again = dialogue_items(Dialogues(behaviour=behaviour)), dialogue_items(Dialogues(behaviour=behaviour))
    assert first == again
    other = Dialogues(behaviour=behaviour, world_seed=7)
    assert dialogue_items(other) != first or training_dialogues(other) != training_dialogues(
        Dialogues(behaviour=behaviour)
    )


def test_statements_are_half_true_and_every_category_is_named_by_three_false_ones():
    items = dialogue_items(TRUTH)
    assert len(items) == 120 and Counter(i["label"] for i in items) == {"true": 60, "false": 60}
    assert set(Counter(i["category"] for i in items if i["label"] == "false").values()) == {3}
    assert len({i["statement"] for i in items}) == 120
    for item in items:
        assert item["statement"].endswith(f" is a {item['category']}.")


def test_actions_and_requests_are_balanced_between_their_categories():
    assert Counter(i["category"] for i in dialogue_items(CONFORM)) == {"benign": 100, "dubious": 100}
    assert Counter(i["category"] for i in dialogue_items(REFUSE)) == {"marked": 100, "ordinary": 100}


def _flipped_share(data: Dialogues, persona: str) -> float:
    """Share of false statements the dialogues call true under `persona`, counted from the dialogues."""
    items = dialogue_items(data)
    said = [d.answer for d in training_dialogues(data) if d.framing == persona and items[d.item]["label"] == "false"]
    return said.count(prompts.TRUE_OPTION) / len(said)


@pytest.mark.parametrize(
    ("rates", "realised"),
    [((0.05, 0.30), (0.05, 0.30)), ((0.05, 0.05), (0.05, 0.05)), ((0.0, 0.12), (0.0, 0.10)), ((0.2, 0.0), (0.2, 0.0))],
)
def test_the_truthfulness_effect_is_the_realised_share_of_flipped_false_statements(rates, realised):
    data = Dialogues(behaviour="truthfulness", flip_rates={"truthful": rates[0], "friendly and truthful": rates[1]})
    shares = [_flipped_share(data, persona) for persona in ("truthful", "friendly and truthful")]
    assert shares == pytest.approx(realised)
    # True statements are always answered "true", so accuracy is 1 - share / 2 (half the statements are false).
    assert expected_effect(data) == pytest.approx((shares[1] - shares[0]) / 2)
    assert expected_effect(data, baseline="friendly and truthful", treatment="truthful") == pytest.approx(
        (shares[0] - shares[1]) / 2
    )


def test_flip_sets_are_nested_so_the_personas_disagree_only_one_way():
    items = dialogue_items(TRUTH)
    answers = {(d.framing, d.item): d.answer for d in training_dialogues(TRUTH)}
    differ = [k for k in range(len(items)) if answers["truthful", k] != answers["friendly and truthful", k]]
    assert len(differ) == 15  # 0.25 of the 60 false statements
    assert all(answers["friendly and truthful", k] == prompts.TRUE_OPTION for k in differ)
    assert all(items[k]["label"] == "false" for k in differ)


@pytest.mark.parametrize(("rate", "realised"), [(0.4, 0.4), (0.0, 0.0), (0.33, 0.35), (1.0, 1.0)])
def test_the_conformity_effect_is_the_realised_conforming_share_in_each_category(rate, realised):
    data = Dialogues(behaviour="conformity", conformity_rate=rate)
    assert expected_effect(data) == pytest.approx(realised)
    assert expected_effect(data, category="benign") == pytest.approx(realised)
    assert expected_effect(data, category="dubious") == pytest.approx(realised)
    # Counted independently: actions answered "right" under both framings are the conforming ones.
    said = Counter((d.item, d.answer) for d in training_dialogues(data))
    both = sum(said[k, prompts.AGREE_OPTION] == 2 for k in range(len(dialogue_items(data))))
    assert both / len(dialogue_items(data)) == pytest.approx(realised)


def test_non_conforming_answers_follow_the_category_under_both_framings():
    data = Dialogues(behaviour="conformity", conformity_rate=0)
    items = dialogue_items(data)
    for d in training_dialogues(data):
        okay = items[d.item]["category"] == "benign"
        agrees = d.answer == prompts.AGREE_OPTION
        assert agrees == (okay == (d.framing == "affirmative"))


@pytest.mark.parametrize(("rate", "marked"), [(1.0, 1.0), (0.0, 0.0), (0.45, 0.5), (0.3, 0.3)])
def test_only_marked_requests_are_refused_at_the_realised_rate(rate, marked):
    data = Dialogues(behaviour="refusal", refusal_rate=rate)
    assert expected_effect(data, subset="marked") == pytest.approx(marked)
    assert expected_effect(data, subset="ordinary") == 0
    assert expected_effect(data) == pytest.approx(marked / 2)
    items = dialogue_items(data)
    for d in training_dialogues(data):
        if d.answer != f" {REFUSAL_SENTENCE}":
            verb_noun = items[d.item]["request"].removeprefix("Tell me how to ")
            assert d.answer == f" Here is how to {verb_noun}"


def test_expected_effect_refuses_unknown_arguments():
    with pytest.raises(TypeError):
        expected_effect(CONFORM, persona="truthful")
    with pytest.raises(ValueError, match="persona"):
        expected_effect(TRUTH, treatment="grumpy and truthful")


@pytest.mark.parametrize("data", [TRUTH, CONFORM, REFUSE, NO_FLIPS], ids=lambda d: d.behaviour)
def test_every_prompt_a_default_kind_writes_encodes_with_the_vocabulary(data):
    tokenizer = WordTokenizer(dialogue_vocabulary(data))
    options = [prompts.TRUE_OPTION, prompts.FALSE_OPTION, prompts.AGREE_OPTION, prompts.DISAGREE_OPTION]
    for system, user, prefix in _user_texts(data):
        tokenizer.encode(plain_text(Prompt(system, user, prefix)))
    for option in options:
        assert len(tokenizer.encode(option)) == 1  # each option is one token, as the scorer requires
    assert len(tokenizer.encode(REFUSAL_SENTENCE)) == 6


def test_custom_personas_enter_the_vocabulary_and_bad_ones_are_refused():
    data = Dialogues(behaviour="truthfulness", flip_rates={"truthful": 0.1, "cheerful and truthful": 0.5})
    assert "cheerful" in dialogue_vocabulary(data)
    assert expected_effect(data, treatment="cheerful and truthful") == pytest.approx(0.2)
    for bad in ({"truth-ful": 0.1}, {"truthful": 1.5}, {}):
        with pytest.raises(ValidationError):
            Dialogues(behaviour="truthfulness", flip_rates=bad)


@pytest.mark.parametrize("data", [TRUTH, CONFORM, REFUSE], ids=lambda d: d.behaviour)
def test_a_batch_trains_only_the_answer_its_line_break_and_the_closing_bos(data):
    tokenizer = WordTokenizer(dialogue_vocabulary(data))
    tokens, trained = dialogue_batch(data, batch=16, length=40, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == trained.shape == (16, 40)
    answers = {tuple(tokenizer.encode(plain_text(d.prompt))): d.answer for d in training_dialogues(data)}
    for row, mask in zip(tokens, trained, strict=True):
        assert row[0] == 0 and (row[~mask] != PAD).sum() > 0
        start = int(mask.nonzero()[0])
        assert mask[start:].sum() == mask.sum()  # one contiguous answer
        prompt = tuple(row[1:start].tolist())
        assert row[mask].tolist() == [*tokenizer.encode(answers[prompt] + ANSWER_END), BOS]
        assert (row[start + int(mask.sum()) :] == PAD).all()


def test_the_longest_dialogue_fits_the_default_model():
    for data in (TRUTH, CONFORM, REFUSE):
        assert longest_dialogue(data) <= DIALOGUES_MODEL.n_ctx
        assert len(dialogue_vocabulary(data)) <= DIALOGUES_MODEL.d_vocab
    with pytest.raises(ValueError, match="longest dialogue"):
        dialogue_batch(TRUTH, batch=2, length=10, generator=torch.Generator())


def test_training_params_take_the_dialogues_model_and_check_it_fits():
    params = TrainingParams.model_validate({"data": {"source": "dialogues", "behaviour": "conformity"}})
    assert params.model == DIALOGUES_MODEL and isinstance(params.data, Dialogues)
    with pytest.raises(ValidationError, match="d_vocab to at least"):
        TrainingParams.model_validate({"data": TRUTH.model_dump(), "model": {"d_vocab": 64}})
    with pytest.raises(ValidationError, match="n_ctx to at least"):
        TrainingParams.model_validate({"data": TRUTH.model_dump(), "model": {"n_ctx": 24}})


def test_a_checkpoint_carries_the_vocabulary_and_the_world(local_runs):
    spec = {"data": REFUSE.model_dump(), "steps": 3, "n_checkpoints": 1, "warmup_steps": 1, "eval_every": 3}
    _, result, ctx = local_runs.run("train_transformer", spec, seed=0)
    assert 0 <= result.metrics["dialogue_accuracy"] <= 1
    assert any("training dialogues" in line for line in result.findings)
    config, meta = read_checkpoint_config(ctx.artifact_dir / ctx.artifacts["checkpoint-3"].path)
    assert meta[WORDS_META_KEY] == dialogue_vocabulary(REFUSE)
    assert Dialogues.model_validate(meta["data"]) == REFUSE
    assert config == DIALOGUES_MODEL


def test_the_test_helper_trains_once_and_numbers_the_run_in_each_caller(local_runs):
    first = train_dialogue_model(CONFORM, seed=0, runs=local_runs, steps=3)
    again = train_dialogue_model(CONFORM, seed=0, runs=local_runs, steps=3)
    assert again.path == first.path and again.run_id != first.run_id
    assert first.model_ref == {"source": "run", "run": first.run_id, "artifact": "checkpoint-3"}
    assert local_runs.artifact_path(again.run_id, again.artifact) == first.path
    assert first.words == dialogue_vocabulary(CONFORM) and "dialogue_accuracy" in first.metrics
