"""ioi_replication specs are checked when written: fewer than two models, a model that cannot read IOI prompts,
a checkpoint that does not exist are each a 400 naming the field, and nothing is stored."""

from __future__ import annotations

import pytest

from experiments.models import ExperimentSpec
from tests.api.test_spec_references import MISSING_RUN, assert_refused, post_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

IOI_NATIVE = {"source": "native", "config": {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_head": 8, "n_ctx": 32,
                                             "d_vocab": 256}}  # fmt: skip


def test_one_model_is_refused_naming_the_models_field(user, idea):
    assert_refused(post_spec(user, idea, "ioi_replication", {"models": [IOI_NATIVE]}), "params.models", "at least 2")


def test_a_model_whose_vocabulary_cannot_hold_the_prompts_is_refused(user, idea):
    small = {"source": "native", "config": {**IOI_NATIVE["config"], "d_vocab": 64}}
    response = post_spec(user, idea, "ioi_replication", {"models": [IOI_NATIVE, small]})
    assert_refused(response, "params.models.1", "vocabulary of at least")


def test_a_checkpoint_that_does_not_exist_is_refused(user, idea):
    missing = {"source": "run", "run": MISSING_RUN, "artifact": "checkpoint-10"}
    response = post_spec(user, idea, "ioi_replication", {"models": [missing, IOI_NATIVE]})
    assert_refused(response, "params.models.0", str(MISSING_RUN))


def test_the_default_spec_trains_its_own_models_and_is_accepted(user, idea):
    assert post_spec(user, idea, "ioi_replication", {}).status_code == 201
    assert post_spec(user, idea, "ioi_replication", {"models": [IOI_NATIVE, IOI_NATIVE]}).status_code == 201
    assert ExperimentSpec.objects.filter(kind="ioi_replication").count() == 2
