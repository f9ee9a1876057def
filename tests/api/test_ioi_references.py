"""ioi's bad input is a 400 naming the field before anything is queued: a checkpoint whose vocabulary cannot hold
the IOI prompts' words, a pretrained model whose tokenizer writes fewer than three of the chosen names as one
token, a model trained here on other data, and out-of-bounds settings."""

from __future__ import annotations

import pytest

from tests.api.test_spec_references import assert_refused, post_spec, training_run
from tests.engine.test_ioi import tiny_gpt2_with_names

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

KIND = "ioi"


def test_a_checkpoint_too_small_for_the_ioi_vocabulary_is_refused(user, idea):
    run = training_run(steps=(1000,))  # the default induction model: 64 token ids
    response = post_spec(user, idea, KIND, {"model": {"source": "run", "run": run.pk, "artifact": "checkpoint-1000"}})
    assert_refused(response, "params.model", "vocabulary of 64", "at least 229")


def test_a_tokenizer_that_splits_the_names_is_refused(user, idea, tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    ref = tiny_gpt2_with_names(tmp_path / "few-names", ("Alice", "Mary"))
    response = post_spec(user, idea, KIND, {"model": ref, "data": {"names": "all"}})
    assert_refused(response, "params.model", "writes only 2 of the 120 names data.names selects ('all')", "at least 3")


def test_a_model_trained_here_on_other_data_is_refused(user, idea):
    response = post_spec(user, idea, KIND, {"training": {"data": {"source": "markov_text"}}})
    assert_refused(response, "params.training.data", "trained on ioi_prompts")


@pytest.mark.parametrize(
    ("params", "field"), [({"top_k": 0}, "params.top_k"), ({"data": {"n_prompts": 2}}, "params.data.n_prompts")]
)
def test_out_of_bounds_settings_are_refused(user, idea, params, field):
    assert_refused(post_spec(user, idea, KIND, params), field)


def test_the_default_spec_is_accepted(user, idea):
    response = post_spec(user, idea, KIND, {})
    assert response.status_code == 201, response.content
