"""An automatic status change names the run whose verdict made it, in the API and on the page."""

import pytest
from rest_framework.test import APIClient

from experiments.services import run_execute, run_trigger, spec_create
from experiments.services import runs as runs_module
from ideas.models import IdeaKind
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db


def test_status_history_names_the_run(author, settings, tmp_path, monkeypatch, client):
    settings.ARTIFACT_ROOT = tmp_path
    monkeypatch.setattr(runs_module, "_send", lambda run: None)
    idea = IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author)
    criterion = {"metric": "steps_completed", "comparator": ">=", "threshold": 2, "if_met": "supports"}
    spec = spec_create(idea=idea, user=author, title="s", kind="smoke", params={"steps": 2}, criterion=criterion)
    run = run_trigger(spec=spec, user=author).run
    run_execute(run_id=run.pk)

    history = APIClient().get(f"/api/ideas/{idea.pk}/status-history/").json()
    entries = history["results"] if isinstance(history, dict) else history
    assert entries[0]["run"] == run.pk and entries[0]["changed_by"] is None and entries[0]["to_status"] == "supported"

    page = client.get(idea.get_absolute_url()).content.decode()
    assert f'href="/runs/{run.pk}/"' in page and f"run {run.pk}</a>" in page
