"""causal_tracing's bad input is a 400 naming the field before anything is queued: more prompts than the facts
have, a model whose vocabulary or context the facts do not fit (a native config or a checkpoint's), a pretrained
model outside the model folders."""

from __future__ import annotations

import pytest

from experiments.models import ExperimentSpec
from tests.api.test_spec_references import assert_refused, post_spec, training_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

KIND = "causal_tracing"
FACTS_MODEL = {
    "n_layers": 2, "n_heads": 4, "d_model": 64, "d_head": 16, "d_mlp": 256, "n_ctx": 16, "d_vocab": 136,
    "attn_only": False,
}  # fmt: skip


def test_more_prompts_than_the_facts_have_is_refused_naming_n_prompts(user, idea):
    params = {"facts": {"n_subjects": 8, "n_relations": 1}, "n_prompts": 30, "model": {"source": "native",
              "config": FACTS_MODEL}}  # fmt: skip
    assert_refused(post_spec(user, idea, KIND, params), "params.n_prompts", "The facts have 24 held-out prompts")


def test_more_prompts_than_the_facts_the_model_is_trained_on_have_is_refused(user, idea):
    params = {"training": {"data": {"source": "facts", "n_subjects": 8, "n_relations": 1}}, "n_prompts": 100}
    assert_refused(post_spec(user, idea, KIND, params), "params.n_prompts", "n_prompts=100 asks for more")


def test_a_native_model_whose_vocabulary_the_facts_do_not_fit_is_refused(user, idea):
    params = {"model": {"source": "native", "config": {**FACTS_MODEL, "d_vocab": 32}}}
    assert_refused(post_spec(user, idea, KIND, params), "params.model", "the model's has 32")


def test_a_checkpoint_too_small_for_the_facts_is_refused(user, idea):
    run = training_run(steps=(100,), n_ctx=8)  # the default attention-only model: 64 token ids
    params = {"model": {"source": "run", "run": run.pk, "artifact": "checkpoint-100"}}
    assert_refused(post_spec(user, idea, KIND, params), "params.model", "the model's has 64")


def test_a_pretrained_model_outside_the_model_folders_is_refused(user, idea, tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path / "models"))
    params = {"model": {"source": "pretrained", "name": str(tmp_path / "elsewhere")}, "known_only": False}
    assert_refused(post_spec(user, idea, KIND, params), "params.model.name", "PRETRAINED_MODEL_DIRS")


def test_the_default_spec_and_a_fitting_native_model_are_accepted(user, idea):
    assert post_spec(user, idea, KIND, {}).status_code == 201
    params = {"model": {"source": "native", "config": FACTS_MODEL}, "n_prompts": 32}
    assert post_spec(user, idea, KIND, params).status_code == 201
    assert ExperimentSpec.objects.filter(kind=KIND).count() == 2
