"""/api/experiment-kinds/ and /api/experiments/: the kinds, and specs attached to ideas (list, create, read)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.engine.training import SMALL_ATTN_ONLY
from experiments.models import ExperimentSpec
from experiments.services import run_trigger
from ideas.models import IdeaKind
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory, UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

URL = "/api/experiments/"
SUPPORT_IF_FIVE_STEPS = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}


def spec_body(idea, /, **overrides) -> dict:
    return {"idea": idea.pk, "title": "Count to three", "kind": "smoke", "params": {"steps": 3}} | overrides


# --- kinds -------------------------------------------------------------------------------------


def test_kinds_list_includes_smoke_with_its_schema(anon_client):
    response = anon_client.get("/api/experiment-kinds/")
    assert response.status_code == 200, response.content
    kinds = {kind["key"]: kind for kind in response.json()}
    smoke = kinds["smoke"]
    assert smoke["title"] == "Smoke test (counts steps)"
    assert smoke["doc"].startswith("Smoke test for operators")
    steps = smoke["params_schema"]["properties"]["steps"]
    assert (steps["type"], steps["minimum"], steps["maximum"], steps["default"]) == ("integer", 1, 10_000, 10)
    assert smoke["params_schema"]["additionalProperties"] is False
    assert smoke["metrics"]["steps_completed"] == "How many steps ran."
    assert (smoke["device"], smoke["soft_time_limit"], smoke["time_limit"]) == ("cpu", 3000, 3060)
    assert smoke["part_metrics"] == {"steps": "Steps counted in this part.", "sum": "Their sum."}
    depth = kinds["attention_depth_comparison"]
    assert depth["part_metrics"]["n_induction_heads"] == "Heads with induction score >= 0.4."
    assert depth["series"]["loss"] == "training loss (nats per token)"


def test_kind_detail_and_unknown_kind(anon_client):
    assert anon_client.get("/api/experiment-kinds/smoke/").json()["key"] == "smoke"
    body = assert_error(anon_client.get("/api/experiment-kinds/nope/"), 404, code="not_found")
    assert "'nope'" in body["detail"]


def test_kinds_take_no_query_parameters(anon_client):
    assert_error(anon_client.get("/api/experiment-kinds/", {"key": "smoke"}), 400, field="key")


# --- creating specs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 201), ("author", 201), ("staff", 201)])
def test_who_may_attach_a_spec(clients, authored_idea, role, status):
    response = clients[role].post(URL, spec_body(authored_idea), format="json")
    assert response.status_code == status, response.content
    assert ExperimentSpec.objects.count() == (status == 201)


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("user", 403), ("author", 201), ("staff", 201)])
def test_only_the_idea_author_or_staff_pre_register_a_criterion(clients, authored_idea, role, status):
    response = clients[role].post(URL, spec_body(authored_idea, criterion=SUPPORT_IF_FIVE_STEPS), format="json")
    assert response.status_code == status, response.content
    if status == 403:
        assert response.json() == {
            "detail": "Only the idea's author or staff can pre-register a criterion for it.",
            "code": "permission_denied",
        }
    assert ExperimentSpec.objects.count() == (status == 201)


def test_created_spec_is_normalized_and_answered_in_full(author, authored_idea):
    response = client_for(author).post(
        URL,
        spec_body(authored_idea, description="Why", seed=7, criterion=SUPPORT_IF_FIVE_STEPS),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    spec = ExperimentSpec.objects.get()
    assert body["id"] == spec.pk and spec.author == author
    assert body["params"] == {
        "steps": 3,
        "delay_seconds": 0.0,
        "fail_at_step": None,
        "exit_at_step": None,
        "parts": None,
        "time_limit_seconds": None,
    }
    assert body["criterion"] == {**SUPPORT_IF_FIVE_STEPS, "threshold": 5.0, "otherwise": "refutes"}
    assert (body["seed"], body["description"], body["author"], body["kind"]) == (7, "Why", author.username, "smoke")
    assert body["idea"]["id"] == authored_idea.pk
    assert (body["run_count"], body["runs"]) == (0, [])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"params": {"steps": 10**9}}, "params.steps"),
        ({"params": {"steps": True}}, "params.steps"),  # JSON true is not a number of steps
        ({"params": {"steps": "3"}}, "params.steps"),
        ({"params": {"delay_seconds": False}}, "params.delay_seconds"),
        ({"params": {"steps": 3, "code": "import os"}}, "params.code"),
        ({"params": "steps=3"}, "params"),
        ({"kind": "nope"}, "kind"),
        ({"criterion": {**SUPPORT_IF_FIVE_STEPS, "metric": "accuracy"}}, "criterion.metric"),
        ({"criterion": {**SUPPORT_IF_FIVE_STEPS, "comparator": "=="}}, "criterion.comparator"),
        ({"criterion": {**SUPPORT_IF_FIVE_STEPS, "if_met": "proves"}}, "criterion.if_met"),
        ({"idea": 424242}, "idea"),
        ({"title": "   "}, "title"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_specs_are_400_naming_the_field(author, authored_idea, overrides, field):
    response = client_for(author).post(URL, spec_body(authored_idea, **overrides), format="json")
    body = assert_error(response, 400, field=field, code="invalid")
    assert field in body["detail"]
    assert ExperimentSpec.objects.count() == 0


@pytest.mark.parametrize("role", ["author", "staff"])
def test_a_criterion_on_an_open_ended_idea_is_400_naming_criterion(clients, author, role):
    idea = IdeaFactory(author=author, kind=IdeaKind.OPEN_ENDED)
    response = clients[role].post(URL, spec_body(idea, criterion=SUPPORT_IF_FIVE_STEPS), format="json")
    body = assert_error(response, 400, field="criterion", code="invalid")
    assert body["errors"]["criterion"][0].startswith("Criteria are for hypotheses: this idea is open-ended")
    assert ExperimentSpec.objects.count() == 0
    assert clients[role].post(URL, spec_body(idea), format="json").status_code == 201  # without one: fine


@pytest.mark.parametrize(
    "name", ["/etc", "../../etc", "/proc/self", "models/../../etc", "gpt2\x00", "gpt2\n/etc", "org/name/extra"]
)
def test_a_pretrained_model_outside_the_model_folders_is_refused_when_the_spec_is_written(
    user, idea, name, tmp_path, monkeypatch
):
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    params = {"model": {"source": "pretrained", "name": name}}
    response = client_for(user).post(URL, spec_body(idea, kind="head_detection", params=params), format="json")
    body = assert_error(response, 400, code="invalid")
    # Control characters already fail the name's pattern, whose key names the union's branch ("pretrained").
    field = "params.model.pretrained.name" if any(char in name for char in "\0\n") else "params.model.name"
    assert list(body["errors"]) == [field], body
    assert ExperimentSpec.objects.count() == 0


@pytest.mark.parametrize("name", ["gpt2", "EleutherAI/pythia-14m", "{models}/tiny-gpt2"])
def test_hugging_face_names_and_folders_under_the_model_folders_are_accepted(user, idea, name, tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    params = {"model": {"source": "pretrained", "name": name.format(models=tmp_path)}}
    response = client_for(user).post(URL, spec_body(idea, kind="head_detection", params=params), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["params"]["model"]["name"] == name.format(models=tmp_path)


def test_a_partial_model_override_is_stored_merged_over_the_kinds_default_model(user, idea):
    params = {"model": {"n_layers": 1}}
    response = client_for(user).post(URL, spec_body(idea, kind="train_transformer", params=params), format="json")
    assert response.status_code == 201, response.content
    merged = SMALL_ATTN_ONLY.model_dump(mode="json") | {"n_layers": 1}
    assert response.json()["params"]["model"] == merged == ExperimentSpec.objects.get().params["model"]


def test_unknown_kind_error_points_at_the_kinds(user, idea):
    body = assert_error(client_for(user).post(URL, spec_body(idea, kind="nope"), format="json"), 400, field="kind")
    assert "/api/experiment-kinds/" in body["errors"]["kind"][0]


def test_a_criterion_metric_the_kind_does_not_produce_is_named(author, authored_idea):
    criterion = {**SUPPORT_IF_FIVE_STEPS, "metric": "accuracy"}
    response = client_for(author).post(URL, spec_body(authored_idea, criterion=criterion), format="json")
    body = assert_error(response, 400, field="criterion.metric")
    assert "'smoke' produces no metric 'accuracy'" in body["errors"]["criterion.metric"][0]


def test_spec_body_must_be_json(user, idea):
    response = client_for(user).post(URL, "idea=1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, code="unsupported_media_type")


# --- reading specs -----------------------------------------------------------------------------


def test_list_filters_by_idea_and_pages(user, anon_client):
    first, second = IdeaFactory(), IdeaFactory()
    mine = [smoke_spec(first, user, steps=n) for n in (1, 2)]
    smoke_spec(second, user)
    page = anon_client.get(URL, {"idea": first.pk}).json()
    assert page["count"] == 2
    assert [spec["id"] for spec in page["results"]] == [spec.pk for spec in mine]
    page = anon_client.get(URL, {"page_size": 2}).json()
    assert (page["count"], len(page["results"])) == (3, 2) and page["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"idea": 424242}, "idea"), ({"idea": "abc"}, "idea"), ({"ideas": 1}, "ideas"), ({"page_size": 500}, "page_size")],
)
def test_bad_list_parameters_are_400(anon_client, query, field):
    assert_error(anon_client.get(URL, query), 400, field=field)


def test_detail_shows_the_newest_runs(user, idea):
    spec = smoke_spec(idea, user, steps=2)
    runs = [run_trigger(spec=spec, user=user, force=True).run for _ in range(12)]
    body = client_for(None).get(f"{URL}{spec.pk}/").json()
    assert body["run_count"] == 12
    assert [run["id"] for run in body["runs"]] == [run.pk for run in reversed(runs)][:10]
    assert set(body["runs"][0]) == {
        "id",
        "status",
        "progress",
        "verdict",
        "forced",
        "created_by",
        "created_at",
        "finished_at",
    }
    assert body["runs"][0]["created_by"] == user.username


def test_missing_spec_is_404(anon_client):
    body = assert_error(anon_client.get(f"{URL}424242/"), 404, code="not_found")
    assert "424242" in body["detail"]


def test_list_by_idea_is_readable_by_anyone(anon_client):
    idea = IdeaFactory()
    smoke_spec(idea, UserFactory())
    assert anon_client.get(URL, {"idea": idea.pk}).json()["count"] == 1


def _queries_for_list(expected: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client_for(None).get(URL, {"page_size": 100})
    assert len(response.json()["results"]) == expected
    return len(queries)


def test_list_costs_the_same_queries_for_2_or_20_specs(user, settings):
    settings.RUN_QUEUE_CAP_PER_USER = 100
    for _ in range(2):
        run_trigger(spec=smoke_spec(IdeaFactory(author=UserFactory()), user), user=user)
    few = _queries_for_list(2)
    for steps in range(2, 20):
        run_trigger(spec=smoke_spec(IdeaFactory(author=UserFactory()), UserFactory(), steps=steps), user=user)
    assert _queries_for_list(20) == few
