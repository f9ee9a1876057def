"""An automatic status change names the run whose verdict made it, in the API and on the page."""

import pytest
from rest_framework.test import APIClient

from experiments.services import run_execute, run_trigger
from ideas.models import IdeaKind
from tests.factories import IdeaFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def test_status_history_names_the_run(author, client):
    idea = IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author)
    criterion = {"metric": "steps_completed", "comparator": ">=", "threshold": 2, "if_met": "supports"}
    spec = smoke_spec(idea, author, criterion=criterion, steps=2)
    run = run_trigger(spec=spec, user=author).run
    run_execute(run_id=run.pk)

    history = APIClient().get(f"/api/ideas/{idea.pk}/status-history/").json()
    entries = history["results"] if isinstance(history, dict) else history
    assert entries[0]["run"] == run.pk and entries[0]["changed_by"] is None and entries[0]["to_status"] == "supported"

    page = client.get(idea.get_absolute_url()).content.decode()
    assert f'href="/runs/{run.pk}/"' in page and f"run {run.pk}</a>" in page
