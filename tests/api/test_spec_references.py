"""Specs that name other runs by id are checked when written and again when triggered: a run that does not exist,
has not succeeded or lacks what the kind reads is a 400 naming the field, and nothing is stored or queued."""

from __future__ import annotations

import pytest
from django.conf import settings

from experiments.engine.models import save_checkpoint
from experiments.engine.training import SMALL_ATTN_ONLY
from experiments.models import Artifact, ExperimentRun, ExperimentSpec, RunStatus
from tests.api.conftest import assert_error, client_for
from tests.factories import ExperimentRunFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

URL = "/api/experiments/"
MISSING_RUN = 424242
DEFAULT_HALF_LENGTH = 31  # head_detection's and checkpoint_pca's default data: 63 tokens, too many for n_ctx 16


def add_artifact(run: ExperimentRun, name: str, artifact_type: str, *, n_ctx: int = 64, step: int = 0) -> None:
    """A file under ARTIFACT_ROOT and its row, as a succeeded run records it (a checkpoint with its config)."""
    relative = f"runs/{run.pk}/1/{name}.safetensors"
    path = settings.ARTIFACT_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if artifact_type == "checkpoint":
        save_checkpoint({}, SMALL_ATTN_ONLY.model_copy(update={"n_ctx": n_ctx}), path, meta={"step": step})
    else:
        path.write_bytes(b"{}")
    Artifact.objects.create(
        run=run, name=name, path=relative, artifact_type=artifact_type, content_type="application/octet-stream",
        size=path.stat().st_size, sha256="0" * 64, meta={"step": step} if artifact_type == "checkpoint" else {},
    )  # fmt: skip


def training_run(*, steps=(10, 100, 1000), n_ctx: int = 64, status=RunStatus.SUCCEEDED) -> ExperimentRun:
    run = ExperimentRunFactory(status=status)
    for step in steps:
        add_artifact(run, f"checkpoint-{step}", "checkpoint", n_ctx=n_ctx, step=step)
    return run


def head_detection_run() -> ExperimentRun:
    run = ExperimentRunFactory(status=RunStatus.SUCCEEDED)
    add_artifact(run, "head_scores", "tensors")
    return run


def post_spec(user, idea, kind: str, params: dict):
    body = {"idea": idea.pk, "title": "References", "kind": kind, "params": params}
    return client_for(user).post(URL, body, format="json")


def assert_refused(response, field: str, *message_parts: str) -> None:
    body = assert_error(response, 400, field=field, code="invalid")
    assert list(body["errors"]) == [field], body
    for part in message_parts:
        assert part in body["errors"][field][0], body
    assert not ExperimentSpec.objects.filter(title="References").exists()  # the factories' runs have their own


# --- checkpoint_pca ----------------------------------------------------------------------------------------------


def test_checkpoint_pca_of_a_run_that_does_not_exist_is_refused(user, idea):
    response = post_spec(user, idea, "checkpoint_pca", {"run": MISSING_RUN})
    assert_refused(response, "params.run", f"There is no run {MISSING_RUN}.")


def test_checkpoint_pca_of_a_run_that_failed_is_refused(user, idea):
    run = training_run(status=RunStatus.FAILED)
    assert_refused(post_spec(user, idea, "checkpoint_pca", {"run": run.pk}), "params.run", "has not succeeded")


def test_checkpoint_pca_of_a_run_without_checkpoints_is_refused(user, idea):
    run = head_detection_run()
    assert_refused(post_spec(user, idea, "checkpoint_pca", {"run": run.pk}), "params.run", "has no checkpoints")


def test_checkpoint_pca_of_a_run_with_too_few_checkpoints_is_refused(user, idea):
    run = training_run(steps=(10, 100))
    response = post_spec(user, idea, "checkpoint_pca", {"run": run.pk})
    assert_refused(response, "params.run", "at least 3 checkpoints", f"run {run.pk} saved 2")


def test_checkpoint_names_the_run_does_not_have_are_named(user, idea):
    run = training_run()
    params = {"run": run.pk, "checkpoints": ["checkpoint-10", "checkpoint-7", "checkpoint-99"]}
    response = post_spec(user, idea, "checkpoint_pca", params)
    assert_refused(response, "params.checkpoints", "no checkpoints named checkpoint-7, checkpoint-99;")


def test_fewer_than_three_selected_checkpoints_are_refused(user, idea):
    run = training_run()
    params = {"run": run.pk, "checkpoints": ["checkpoint-10", "checkpoint-1000"]}
    response = post_spec(user, idea, "checkpoint_pca", params)
    assert_refused(response, "params.checkpoints", "at least 3 checkpoints", "2 are selected")


def test_checkpoint_pca_data_longer_than_the_checkpoints_context_is_refused(user, idea):
    run = training_run(n_ctx=16)
    response = post_spec(user, idea, "checkpoint_pca", {"run": run.pk})
    assert_refused(response, "params.data.half_length", "the model's context is 16", "Use half_length <= 7")


def test_checkpoint_pca_of_a_run_with_enough_checkpoints_is_accepted(user, idea):
    run = training_run(steps=(10, 100, 1000, 3000))
    for checkpoints in (None, ["checkpoint-10", "checkpoint-100", "checkpoint-3000"]):
        response = post_spec(user, idea, "checkpoint_pca", {"run": run.pk, "checkpoints": checkpoints})
        assert response.status_code == 201, response.content


# --- head_ablation -----------------------------------------------------------------------------------------------

NATIVE = {"source": "native", "config": SMALL_ATTN_ONLY.model_dump()}


@pytest.mark.parametrize("head_types_from", ["missing", "training run", "failed"])
def test_head_types_from_a_run_that_did_not_save_head_scores_are_refused(user, idea, head_types_from):
    run_id = {
        "missing": lambda: MISSING_RUN,
        "training run": lambda: training_run().pk,
        "failed": lambda: ExperimentRunFactory(status=RunStatus.FAILED).pk,
    }[head_types_from]()
    response = post_spec(user, idea, "head_ablation", {"model": NATIVE, "head_types_from_run": run_id})
    assert_refused(response, "params.head_types_from_run", "A head_detection run saves them.")


def test_head_types_from_a_head_detection_run_are_accepted(user, idea):
    params = {"model": NATIVE, "head_types_from_run": head_detection_run().pk}
    assert post_spec(user, idea, "head_ablation", params).status_code == 201


# --- attention_depth_comparison ----------------------------------------------------------------------------------


def test_each_run_to_compare_must_have_succeeded_with_checkpoints(user, idea):
    good, empty = training_run(), head_detection_run()
    response = post_spec(user, idea, "attention_depth_comparison", {"runs": [good.pk, MISSING_RUN, empty.pk]})
    body = assert_error(response, 400, code="invalid")
    assert body["errors"] == {
        "params.runs.1": [f"There is no run {MISSING_RUN}."],
        "params.runs.2": [f"Run {empty.pk} (smoke) has no checkpoints; train_transformer runs save them."],
    }
    assert not ExperimentSpec.objects.filter(title="References").exists()
    assert post_spec(user, idea, "attention_depth_comparison", {"runs": [good.pk]}).status_code == 201


# --- repeated tokens against the model's context -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["head_detection", "head_ablation"])
def test_repeated_tokens_longer_than_a_native_models_context_are_refused(user, idea, kind):
    model = {"source": "native", "config": {**NATIVE["config"], "n_ctx": 16}}
    response = post_spec(user, idea, kind, {"model": model})
    assert_refused(
        response,
        "params.data.half_length",
        f"half_length={DEFAULT_HALF_LENGTH} makes sequences of 63 tokens; the model's context is 16. "
        "Use half_length <= 7.",
    )


def test_repeated_tokens_longer_than_a_checkpoints_context_are_refused(user, idea):
    run = training_run(n_ctx=16)
    model = {"source": "run", "run": run.pk, "artifact": "checkpoint-1000"}
    response = post_spec(user, idea, "head_detection", {"model": model})
    assert_refused(response, "params.data.half_length", "the model's context is 16")
    params = {"model": model, "data": {"n_sequences": 8, "half_length": 7}}
    assert post_spec(user, idea, "head_detection", params).status_code == 201


def test_depth_comparison_evaluation_longer_than_a_compared_runs_context_is_refused(user, idea):
    run = training_run(n_ctx=16)
    response = post_spec(user, idea, "attention_depth_comparison", {"runs": [run.pk]})
    assert_refused(response, "params.eval_data.half_length", f"Run {run.pk}:", "the model's context is 16")
    params = {"runs": [run.pk], "eval_data": {"n_sequences": 8, "half_length": 7}}
    assert post_spec(user, idea, "attention_depth_comparison", params).status_code == 201


def test_depth_comparison_evaluation_longer_than_the_trained_models_context_is_refused(user, idea):
    params = {"training": {"model": {"n_ctx": 32}}}
    response = post_spec(user, idea, "attention_depth_comparison", params)
    assert_refused(response, "params", "eval_data: half_length=31 makes sequences of 63 tokens")


# --- at trigger ---------------------------------------------------------------------------------------------------


def test_a_spec_whose_referenced_run_was_deleted_is_400_at_trigger(user, idea):
    run = training_run()
    spec_id = post_spec(user, idea, "checkpoint_pca", {"run": run.pk}).json()["id"]
    run_id = run.pk
    run.delete()
    response = client_for(user).post(f"{URL}{spec_id}/runs/", format="json")
    body = assert_error(response, 400, field="params.run", code="invalid")
    assert body["errors"]["params.run"] == [f"There is no run {run_id}."]
    assert not ExperimentRun.objects.filter(spec_id=spec_id).exists()
