"""grokking_modular_addition specs through the API: bad params are a 400 naming the field, nothing stored; a good
spec is stored with every value its preset filled in (what the spec hash reads)."""

from __future__ import annotations

import pytest

from experiments.engine.kinds.grokking_modular_addition import PRESETS
from experiments.models import ExperimentSpec
from tests.api.conftest import assert_error, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

URL = "/api/experiments/"
KIND = "grokking_modular_addition"


def post_spec(user, idea, params: dict):
    body = {"idea": idea.pk, "title": "Grokking", "kind": KIND, "params": params}
    return client_for(user).post(URL, body, format="json")


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"p": 57}, "params.p", "prime"),
        ({"p": 1009}, "params.p", "less than or equal to 257"),
        ({"p": 5, "train_fraction": 0.99}, "params.train_fraction", "test set"),
        ({"train_fraction": 1}, "params.train_fraction", "less than 1"),
        ({"d_model": 4096}, "params.d_model", "less than or equal to 512"),
        ({"n_heads": 3}, "params.n_heads", "divisible"),
        ({"steps": 1_000_000}, "params.steps", "less than or equal to 100000"),
        ({"lr": 5}, "params.lr", "less than or equal to 0.1"),
        ({"preset": "tpu"}, "params.preset", "'cpu' or 'nanda2023'"),
    ],
)
def test_bad_grokking_params_are_400_naming_the_field(user, idea, params, field, words):
    body = assert_error(post_spec(user, idea, params), 400, field=field, code="invalid")
    assert list(body["errors"]) == [field], body
    assert words in body["errors"][field][0], body
    assert not ExperimentSpec.objects.exists()


def test_a_spec_is_stored_with_its_presets_values_filled_in(user, idea):
    response = post_spec(user, idea, {"preset": "nanda2023", "steps": 30_000})
    assert response.status_code == 201, response.content
    stored = ExperimentSpec.objects.get().params
    assert stored == response.json()["params"]
    assert {name: stored[name] for name in PRESETS["nanda2023"]} == PRESETS["nanda2023"] | {"steps": 30_000}
