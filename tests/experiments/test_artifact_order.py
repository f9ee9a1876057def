"""The run page lists a run's artifacts in the same order as the API: other files by name, then checkpoints by step."""

from __future__ import annotations

import re

import pytest

from experiments.services import run_execute, run_trigger
from tests.api.test_runs import ARTIFACTS_IN_ORDER, add_artifacts_that_sort_wrongly_as_text
from tests.factories import IdeaFactory, UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def test_run_page_lists_checkpoints_by_step(client):
    author = UserFactory()
    spec = smoke_spec(IdeaFactory(author=author), author, steps=2)
    run = run_trigger(spec=spec, user=author).run
    run_execute(run_id=run.pk)
    add_artifacts_that_sort_wrongly_as_text(run)
    html = client.get(run.get_absolute_url()).content.decode()
    table = html[html.index('id="artifacts-heading"') :]
    # Files one per row; each model's checkpoints as one row that opens to the list, by step.
    names = re.findall(r'(?:<th scope="row">|download>)<code>([^<]+)</code>', table)
    assert names == ARTIFACTS_IN_ORDER
    assert "<code>checkpoint-*</code> · 4 checkpoints, steps 10 to 1122" in table
    assert "<code>L2-checkpoint-*</code> · 2 checkpoints, steps 20 to 100" in table
