"""The OpenAPI schema, proven against generated input with schemathesis.

Every operation in /api/schema/ is called with examples generated from the schema
(valid and invalid, fixed seed, a bounded number each) through the WSGI app, as
a signed-in staff member who authored some of the ideas, so every write runs:
no 5xx, every status code, content
type and body as the schema documents. The catalogue has an experiment spec with
a finished run and an artifact, and two uploaded datasets; triggered runs are
queued but never sent.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.services import token_issue
from api.throttles import AnonReadThrottle, TriggerThrottle, WriteThrottle
from experiments.models import Artifact, Dataset, ExperimentRun, ExperimentSpec
from experiments.services import dataset_upload, run_execute, run_trigger
from ideas.models import Idea, IdeaKind, IdeaLink, IdeaStatus, StatusChange
from tests.factories import CollectionFactory, IdeaFactory, TagFactory, UserFactory, smoke_spec

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20251126,
        "generation": {"max-examples": 30, "deterministic": True, "mode": "all"},
        "phases": {"stateful": {"enabled": False}},
    }
)


@pytest.fixture
def keep_test_connection():
    """Called straight through WSGI, Django would close the test's connection after each request.

    (Django's own test client does the same disconnect.)
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def catalogue(db, keep_test_connection, no_broker, monkeypatch, tmp_path) -> tuple[str, dict[str, list]]:
    """A small catalogue, five of its ideas by the fuzzer (staff), a spec with a finished run and an artifact, datasets.

    Returns the fuzzer's token and the existing ids (and names) to aim generated ones at.
    """
    monkeypatch.setattr(AnonReadThrottle, "rate", "1000000/min")
    monkeypatch.setattr(WriteThrottle, "rate", "1000000/min")
    monkeypatch.setattr(TriggerThrottle, "rate", "1000000/min")
    fuzzer = UserFactory(username="fuzzer", is_staff=True)
    tag, collection = TagFactory(name="probing"), CollectionFactory(name="hackathon")
    for n in range(1, 6):
        idea = IdeaFactory(author=fuzzer, legacy_number=n, imported_votes=n, body=f"See idea #{n + 1}.")
        idea.tags.add(tag)
        idea.collections.add(collection)
    open_ended = IdeaFactory(kind=IdeaKind.OPEN_ENDED, status=IdeaStatus.IN_PROGRESS)
    IdeaLink.objects.create(source=open_ended, target=idea)
    StatusChange.objects.create(idea=open_ended, from_status="open", to_status="in_progress", changed_by=fuzzer)
    criterion = {"metric": "steps_completed", "comparator": ">=", "threshold": 2, "if_met": "supports"}
    spec = smoke_spec(idea, fuzzer, title="Count", criterion=criterion, steps=2)
    run = run_trigger(spec=spec, user=fuzzer).run
    run_execute(run_id=run.pk)
    (tmp_path / "heads.json").write_text('{"heads": [1, 2]}')
    Artifact.objects.create(
        run=run, name="heads", path="heads.json", artifact_type="json", content_type="application/json", size=17
    )
    for n in range(2):
        corpus = SimpleUploadedFile(f"corpus-{n}.txt", b"the cat sat on the mat\n" * (n + 1))
        dataset_upload(user=fuzzer, name=f"corpus {n}", uploaded_file=corpus)
    ids = {
        "idea": sorted(Idea.objects.values_list("pk", flat=True)),
        "dataset": sorted(Dataset.objects.values_list("pk", flat=True)),
        "spec": sorted(ExperimentSpec.objects.values_list("pk", flat=True)),
        "run": sorted(ExperimentRun.objects.values_list("pk", flat=True)),
        "name": ["heads"],
        "key": ["smoke"],
    }
    return token_issue(user=fuzzer), ids


def _is_id(container, key: str) -> bool:
    value = container.get(key) if isinstance(container, dict) else None
    if isinstance(value, str):
        return value.isascii() and value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _existing(generated: int | str, existing: list) -> int | str:
    """A generated id, turned into an existing one (ids past the end still miss when that row was deleted)."""
    return existing[int(generated) % len(existing)]


def _id_kind(path: str) -> str:
    """Which rows the `{id}` of this path names."""
    if path.startswith("/api/experiments/"):
        return "spec"
    if path.startswith("/api/runs/"):
        return "run"
    if path.startswith("/api/datasets/"):
        return "dataset"
    return "idea"


def _aim(case, existing: dict[str, list]) -> None:
    """Random ids and names would nearly all miss: aim them (in the path, the query, a body) at rows that exist."""
    if _is_id(case.path_parameters, "id"):
        case.path_parameters["id"] = _existing(case.path_parameters["id"], existing[_id_kind(case.operation.path)])
    for name in ("key", "name"):  # half of the generated names become real ones
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, str) and len(value) % 2 == 0:
            case.path_parameters[name] = existing[name][0]
    for name in ("idea", "spec"):
        if _is_id(case.query, name):
            case.query[name] = _existing(case.query[name], existing[name])
    if _is_id(case.body, "target"):
        case.body["target"] = _existing(case.body["target"], existing["idea"])
    if case.operation.path == "/api/experiments/" and _is_id(case.body, "idea"):
        case.body["idea"] = _existing(case.body["idea"], existing["idea"])


# Loaded once, at collection, through the WSGI app (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


@pytest.mark.slow
@schema.parametrize()
# The catalogue is set up once per operation, not per example: examples build on each other's writes, as clients do.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_conforms_to_the_schema(case, catalogue):
    token, existing = catalogue
    _aim(case, existing)
    response = case.call(headers={"Authorization": f"Token {token}"})
    case.validate_response(response, checks=CHECKS)
