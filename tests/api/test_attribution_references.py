"""attribution_patching's bad input is a 400 naming the field before anything is queued: prompt pairs whose clean
and corrupted prompts differ in length or use words the model cannot read, too few prompts, MLP neurons of an
attention-only model, a checkpoint whose vocabulary cannot hold the IOI words, and a pretrained tokenizer that
splits every name."""

from __future__ import annotations

import pytest
from django.conf import settings

from experiments.engine.models import save_checkpoint
from experiments.engine.training import IOI_MODEL, SMALL_ATTN_ONLY
from experiments.models import Artifact
from tests.api.test_spec_references import assert_refused, post_spec
from tests.engine.test_models import model_folders_allowed, tiny_pretrained  # noqa: F401  (fixtures)
from tests.factories import ExperimentRunFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

KIND = "attribution_patching"
CLEAN = "When Mary and John went to the store , John gave a drink to"


def pair(corrupt: str = CLEAN.replace("John gave", "Anna gave")) -> dict:
    return {"clean": CLEAN, "corrupt": corrupt, "answer": "Mary", "wrong": "John"}


def checkpoint_run(config):
    from experiments.models import RunStatus

    run = ExperimentRunFactory(status=RunStatus.SUCCEEDED)
    relative = f"runs/{run.pk}/1/checkpoint-100.safetensors"
    path = settings.ARTIFACT_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint({}, config, path, meta={"step": 100})
    Artifact.objects.create(
        run=run, name="checkpoint-100", path=relative, artifact_type="checkpoint",
        content_type="application/octet-stream", size=path.stat().st_size, sha256="0" * 64, meta={"step": 100},
    )  # fmt: skip
    return {"source": "run", "run": run.pk, "artifact": "checkpoint-100"}


def test_the_default_spec_trains_its_ioi_model_and_is_accepted(user, idea):
    assert post_spec(user, idea, KIND, {}).status_code == 201


def test_prompt_pairs_of_different_lengths_are_refused_naming_the_pair(user, idea):
    pairs = [pair(), pair(), pair(CLEAN + " Mary"), pair()]
    response = post_spec(user, idea, KIND, {"model": checkpoint_run(IOI_MODEL), "data": {"source": "prompt_pairs",
                                                                                          "pairs": pairs}})  # fmt: skip
    assert_refused(response, "params.data.pairs.2.corrupt", "pair 2", "same length")


def test_prompt_pairs_with_words_the_model_cannot_read_are_refused(user, idea):
    pairs = [pair()] * 3 + [pair(CLEAN.replace("store", "spaceport"))]
    response = post_spec(user, idea, KIND, {"data": {"source": "prompt_pairs", "pairs": pairs}})
    assert_refused(response, "params.data.pairs.3.corrupt", "'spaceport'")


def test_too_few_prompt_pairs_are_refused(user, idea):
    response = post_spec(user, idea, KIND, {"data": {"source": "prompt_pairs", "pairs": [pair()] * 3}})
    assert_refused(response, "params.data.prompt_pairs.pairs", "at least 4")


def test_too_few_ioi_prompts_are_refused(user, idea):
    response = post_spec(user, idea, KIND, {"data": {"source": "ioi_prompts", "n_prompts": 4}})
    assert_refused(response, "params.data.ioi_prompts.n_prompts", "greater than or equal to 8")


def test_neurons_of_an_attention_only_checkpoint_are_refused(user, idea):
    response = post_spec(user, idea, KIND, {"model": checkpoint_run(IOI_MODEL), "nodes": ["heads", "neurons"]})
    assert_refused(response, "params.nodes", "attention-only")


def test_a_checkpoint_too_small_for_the_ioi_words_is_refused(user, idea):
    response = post_spec(user, idea, KIND, {"model": checkpoint_run(SMALL_ATTN_ONLY)})
    assert_refused(response, "params.model", "vocabulary has 64 ids")


def test_a_pretrained_tokenizer_that_splits_every_name_is_refused(user, idea, tiny_pretrained, model_folders_allowed):  # noqa: F811
    model = {"source": "pretrained", "name": str(tiny_pretrained)}
    response = post_spec(user, idea, KIND, {"model": model, "exact": "never"})
    assert_refused(response, "params.model", "one token")
