"""JSON bodies are taken at their word: no booleans as integers, no integers as strings, no strings as ids."""

from __future__ import annotations

import pytest

from experiments.models import ExperimentRun, ExperimentSpec
from experiments.services import spec_create
from ideas.models import Collection, Idea, IdeaLink, Tag
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.mark.parametrize("force", [0, 1, "true", "1", None, [], {}])
def test_trigger_force_takes_only_a_json_boolean(user, idea, force):
    spec = spec_create(idea=idea, user=user, title="Count", kind="smoke")
    response = client_for(user).post(f"/api/experiments/{spec.pk}/runs/", {"force": force}, format="json")
    body = assert_error(response, 400, field="force")
    assert "true or false" in body["errors"]["force"][0] or force is None
    assert not ExperimentRun.objects.exists()


def test_trigger_force_true_still_works(user, idea):
    spec = spec_create(idea=idea, user=user, title="Count", kind="smoke")
    response = client_for(user).post(f"/api/experiments/{spec.pk}/runs/", {"force": True}, format="json")
    assert response.status_code == 202, response.content
    assert ExperimentRun.objects.get().forced is True


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": 5, "kind": "hypothesis"}, "title"),
        ({"title": True, "kind": "hypothesis"}, "title"),
        ({"title": "T", "kind": "hypothesis", "body": 0}, "body"),
        ({"title": "T", "kind": "hypothesis", "tags": [0]}, "tags.0"),
        ({"title": "T", "kind": "hypothesis", "tags": [True]}, "tags.0"),
        ({"title": "T", "kind": "hypothesis", "collections": [0]}, "collections.0"),
        ({"title": "T", "kind": "hypothesis", "collections": [1.5]}, "collections.0"),
    ],
)
def test_idea_create_takes_only_json_strings(user, payload, field):
    body = assert_error(client_for(user).post("/api/ideas/", payload, format="json"), 400, field=field)
    assert body["errors"][field] == ["Must be a string."]
    assert (Idea.objects.count(), Tag.objects.count(), Collection.objects.count()) == (0, 0, 0)


def test_idea_update_takes_only_json_strings(user):
    idea = IdeaFactory(author=user, title="Kept")
    response = client_for(user).patch(f"/api/ideas/{idea.pk}/", {"collections": [0], "title": 7}, format="json")
    body = assert_error(response, 400)
    assert set(body["errors"]) == {"collections.0", "title"}
    idea.refresh_from_db()
    assert idea.title == "Kept" and not idea.collections.exists()


def spec_payload(target, **overrides):
    return {"idea": target.pk, "title": "Count", "kind": "smoke"} | overrides


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"seed": True}, "seed"),
        ({"seed": "3"}, "seed"),
        ({"seed": 3.0}, "seed"),
        ({"idea": "IDEA"}, "idea"),
        ({"title": 1}, "title"),
        ({"description": False}, "description"),
        ({"criterion": {"metric": "steps_completed", "comparator": ">=", "threshold": "1", "if_met": "supports"}},
         "criterion.threshold"),
        ({"criterion": {"metric": "steps_completed", "comparator": ">=", "threshold": True, "if_met": "supports"}},
         "criterion.threshold"),
        ({"criterion": {"metric": 3, "comparator": ">=", "threshold": 1, "if_met": "supports"}}, "criterion.metric"),
    ],
)  # fmt: skip
def test_spec_create_takes_only_json_types(author, authored_idea, overrides, field):
    overrides = {key: (str(authored_idea.pk) if value == "IDEA" else value) for key, value in overrides.items()}
    response = client_for(author).post("/api/experiments/", spec_payload(authored_idea, **overrides), format="json")
    assert_error(response, 400, field=field)
    assert not ExperimentSpec.objects.exists()


def test_spec_create_with_json_types_still_works(author, authored_idea):
    criterion = {"metric": "steps_completed", "comparator": ">=", "threshold": 1, "if_met": "supports"}
    payload = spec_payload(authored_idea, seed=3, criterion=criterion)
    response = client_for(author).post("/api/experiments/", payload, format="json")
    assert response.status_code == 201, response.content
    assert ExperimentSpec.objects.get().seed == 3


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"steps": "3000"}, "params.steps", "Input should be a valid integer"),
        ({"model": {"attn_only": "yes"}}, "params.model.attn_only", "Input should be a valid boolean"),
    ],
)
def test_kind_params_take_only_json_types(author, authored_idea, params, field, message):
    payload = spec_payload(authored_idea, kind="train_transformer", params=params)
    body = assert_error(client_for(author).post("/api/experiments/", payload, format="json"), 400, field=field)
    assert body["errors"] == {field: [message]}
    assert not ExperimentSpec.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_body_with_a_non_finite_number_is_not_json(author, authored_idea, number):
    body = f'{{"idea": {authored_idea.pk}, "title": "T", "kind": "train_transformer", "params": {{"lr": {number}}}}}'
    response = client_for(author).post("/api/experiments/", body, content_type="application/json")
    assert "not JSON compliant" in assert_error(response, 400, code="parse_error")["detail"]
    assert not ExperimentSpec.objects.exists()


@pytest.mark.parametrize("target", ["TARGET", True, 1.0])
def test_link_target_takes_only_a_json_integer(user, target):
    source, other = IdeaFactory(author=user), IdeaFactory()
    value = str(other.pk) if target == "TARGET" else target
    response = client_for(user).post(f"/api/ideas/{source.pk}/links/", {"target": value}, format="json")
    assert_error(response, 400, field="target")
    assert not IdeaLink.objects.exists()


def test_status_reason_takes_only_a_string(staff, idea):
    response = client_for(staff).post(
        f"/api/ideas/{idea.pk}/status/", {"status": "in_progress", "reason": 5}, format="json"
    )
    assert_error(response, 400, field="reason")
    idea.refresh_from_db()
    assert idea.status == "open"


def test_token_credentials_take_only_strings(user, password):
    response = client_for().post("/api/auth/token/", {"username": 1, "password": password}, format="json")
    assert_error(response, 400, field="username")
