"""model_diff and activation_inversion check what their params refer to before anything is stored or queued: a
checkpoint that does not exist, models whose vocabularies differ, a layer beyond the model are each a 400 naming
the field."""

from __future__ import annotations

import pytest
from django.conf import settings

from experiments.engine.models import save_checkpoint
from experiments.engine.training import SMALL_ATTN_ONLY
from experiments.models import Artifact, ExperimentRun, ExperimentSpec, RunStatus
from tests.api.test_spec_references import MISSING_RUN, assert_refused, post_spec, training_run
from tests.factories import ExperimentRunFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

DATA = {"source": "repeated_random_tokens", "n_sequences": 8, "half_length": 7}


def run_with_checkpoint(*, d_vocab: int, name: str = "checkpoint-100") -> ExperimentRun:
    """A succeeded run that saved one checkpoint of the default model with this vocabulary."""
    run = ExperimentRunFactory(status=RunStatus.SUCCEEDED)
    relative = f"runs/{run.pk}/1/{name}.safetensors"
    path = settings.ARTIFACT_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint({}, SMALL_ATTN_ONLY.model_copy(update={"d_vocab": d_vocab}), path, meta={"step": 100})
    Artifact.objects.create(
        run=run, name=name, path=relative, artifact_type="checkpoint", content_type="application/octet-stream",
        size=path.stat().st_size, sha256="0" * 64, meta={"step": 100},
    )  # fmt: skip
    return run


def checkpoint(run, name: str = "checkpoint-100") -> dict:
    return {"source": "run", "run": run.pk, "artifact": name}


# --- model_diff ---------------------------------------------------------------------------------------------------


def test_model_diff_of_a_checkpoint_that_does_not_exist_is_refused(user, idea):
    run = run_with_checkpoint(d_vocab=64)
    params = {"models": [checkpoint(run), checkpoint(run, "checkpoint-5")], "data": DATA}
    assert_refused(post_spec(user, idea, "model_diff", params), "params.models.1", "checkpoint-5")


def test_model_diff_of_models_whose_vocabularies_differ_is_refused_naming_both(user, idea):
    params = {"models": [checkpoint(run_with_checkpoint(d_vocab=64)), checkpoint(run_with_checkpoint(d_vocab=48))]}
    response = post_spec(user, idea, "model_diff", {**params, "data": DATA})
    assert_refused(response, "params.models.1", "models.1 has a vocabulary of 48", "models.0 one of 64")


def test_model_diff_of_a_run_that_does_not_exist_is_refused(user, idea):
    response = post_spec(user, idea, "model_diff", {"checkpoints_of": MISSING_RUN})
    assert_refused(response, "params.checkpoints_of", f"There is no run {MISSING_RUN}.")


def test_model_diff_of_checkpoints_a_run_does_not_have_is_refused(user, idea):
    run = training_run()
    params = {"checkpoints_of": run.pk, "checkpoints": ["checkpoint-10", "checkpoint-7"]}
    assert_refused(post_spec(user, idea, "model_diff", params), "params.checkpoints", "checkpoint-7")


def test_model_diff_of_models_with_one_vocabulary_is_accepted(user, idea):
    params = {
        "models": [
            checkpoint(run_with_checkpoint(d_vocab=64)),
            {"source": "native", "config": SMALL_ATTN_ONLY.model_dump()},
        ]
    }
    assert post_spec(user, idea, "model_diff", {**params, "data": DATA}).status_code == 201
    assert post_spec(user, idea, "model_diff", {"checkpoints_of": training_run().pk}).status_code == 201
    assert ExperimentSpec.objects.filter(kind="model_diff").count() == 2


# --- activation_inversion -----------------------------------------------------------------------------------------


def test_activation_inversion_of_a_layer_beyond_a_checkpoint_is_refused(user, idea):
    params = {"model": checkpoint(run_with_checkpoint(d_vocab=64)), "layers": [0, 3]}
    response = post_spec(user, idea, "activation_inversion", params)
    assert_refused(response, "params.layers.1", "Layer 3 is beyond the model: it has 2 layers")


def test_activation_inversion_of_a_layer_beyond_the_model_it_trains_is_refused(user, idea):
    params = {"train": {"model": {"n_layers": 1}}, "layers": [0, 1, 2]}
    assert_refused(post_spec(user, idea, "activation_inversion", params), "params.layers.2", "it has 1 layers")


def test_activation_inversion_of_a_checkpoint_that_does_not_exist_is_refused(user, idea):
    params = {"model": {"source": "run", "run": MISSING_RUN, "artifact": "checkpoint-100"}, "layers": [0]}
    assert_refused(post_spec(user, idea, "activation_inversion", params), "params.model", str(MISSING_RUN))


def test_activation_inversion_of_dimensions_beyond_the_residual_stream_is_refused(user, idea):
    params = {"model": checkpoint(run_with_checkpoint(d_vocab=64)), "layers": [0], "dims": {"start": 0, "stop": 65}}
    assert_refused(post_spec(user, idea, "activation_inversion", params), "params.dims.stop", "64 dimensions")


def test_activation_inversion_within_the_model_is_accepted(user, idea):
    params = {"model": checkpoint(run_with_checkpoint(d_vocab=64)), "layers": [0, 2], "dims": "first_half"}
    assert post_spec(user, idea, "activation_inversion", params).status_code == 201
    assert post_spec(user, idea, "activation_inversion", {}).status_code == 201
