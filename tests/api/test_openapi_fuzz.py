"""The OpenAPI schema, proven against generated input with schemathesis.

Every operation in /api/schema/ is called with examples generated from the schema
(valid and invalid, fixed seed, a bounded number each) through the WSGI app, as
a signed-in staff member who authored some of the ideas, so every write runs:
no 5xx, every status code, content
type and body as the schema documents.
"""

from __future__ import annotations

import pytest
import schemathesis
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
from api.throttles import AnonReadThrottle, WriteThrottle
from ideas.models import Idea, IdeaKind, IdeaLink, IdeaStatus, StatusChange
from tests.factories import CollectionFactory, IdeaFactory, TagFactory, UserFactory

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
def catalogue(db, keep_test_connection, monkeypatch) -> tuple[str, list[int]]:
    """A small catalogue, five of its ideas by the fuzzer (staff): the fuzzer's token and the ideas' ids."""
    monkeypatch.setattr(AnonReadThrottle, "rate", "1000000/min")
    monkeypatch.setattr(WriteThrottle, "rate", "1000000/min")
    fuzzer = UserFactory(username="fuzzer", is_staff=True)
    tag, collection = TagFactory(name="probing"), CollectionFactory(name="hackathon")
    for n in range(1, 6):
        idea = IdeaFactory(author=fuzzer, legacy_number=n, imported_votes=n, body=f"See idea #{n + 1}.")
        idea.tags.add(tag)
        idea.collections.add(collection)
    open_ended = IdeaFactory(kind=IdeaKind.OPEN_ENDED, status=IdeaStatus.IN_PROGRESS)
    IdeaLink.objects.create(source=open_ended, target=idea)
    StatusChange.objects.create(idea=open_ended, from_status="open", to_status="in_progress", changed_by=fuzzer)
    return token_issue(user=fuzzer), sorted(Idea.objects.values_list("pk", flat=True))


def _is_id(container, key: str) -> bool:
    value = container.get(key) if isinstance(container, dict) else None
    if isinstance(value, str):
        return value.isascii() and value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _existing(generated: int | str, idea_ids: list[int]) -> int:
    """A generated id, turned into an existing idea's (ids past the end still miss when that idea was deleted)."""
    return idea_ids[int(generated) % len(idea_ids)]


# Loaded once, at collection, through the WSGI app (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


@pytest.mark.slow
@schema.parametrize()
# The catalogue is set up once per operation, not per example: examples build on each other's writes, as clients do.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_conforms_to_the_schema(case, catalogue):
    token, idea_ids = catalogue
    # Random ids would nearly all miss: aim the numeric ones (in the path, a link's target) at ideas that exist.
    if _is_id(case.path_parameters, "id"):
        case.path_parameters["id"] = _existing(case.path_parameters["id"], idea_ids)
    if _is_id(case.body, "target"):
        case.body["target"] = _existing(case.body["target"], idea_ids)
    response = case.call(headers={"Authorization": f"Token {token}"})
    case.validate_response(response, checks=CHECKS)
