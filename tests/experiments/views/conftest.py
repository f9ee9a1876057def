"""Shared by the experiment page tests: an author and their hypothesis, a signed-in client, and helpers.

No broker: every page test uses the `no_broker` fixture of tests/conftest.py, and runs
execute in-process with `run_execute`.
"""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from experiments.models import Artifact, ExperimentRun
from experiments.services import run_execute, run_trigger
from ideas.models import IdeaKind
from tests.factories import IdeaFactory, UserFactory

SUPPORT_IF_FIVE_STEPS = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}


@pytest.fixture
def author(db):
    return UserFactory(username="author")


@pytest.fixture
def hypothesis(author):
    return IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author, title="Induction heads form in 2L models")


@pytest.fixture
def author_client(client, author):
    client.force_login(author)
    return client


def executed(spec, user, **kwargs) -> ExperimentRun:
    run = run_trigger(spec=spec, user=user, **kwargs).run
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def html_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def run_url(spec) -> str:
    return reverse("spec-run", kwargs={"pk": spec.pk})


def add_url(idea) -> str:
    return reverse("spec-create", kwargs={"pk": idea.pk})


def write_artifact(settings, run, name, content: bytes, artifact_type="json", filename=None) -> Artifact:
    relative = f"runs/{run.pk}/1/{filename or name + '.json'}"
    path = settings.ARTIFACT_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Artifact.objects.create(
        run=run,
        name=name,
        path=relative,
        artifact_type=artifact_type,
        content_type="application/json",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
