"""experiments/views/actions.py: the Run, Replicate and Cancel buttons."""

from __future__ import annotations

import pytest
from django.urls import reverse

from experiments.models import ExperimentRun, RunStatus
from experiments.services import run_trigger
from tests.experiments.views.conftest import executed, html_of, messages_of, run_url
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, StaffFactory, UserFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


# --- Run, Replicate ---------------------------------------------------------------------------------------


def test_run_button_queues_a_run_and_says_so(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    response = author_client.post(run_url(spec), follow=True)
    run = ExperimentRun.objects.get()
    assert run.status == RunStatus.QUEUED and run.created_by == author and not run.forced
    assert response.redirect_chain[-1][0] == f"{hypothesis.get_absolute_url()}#spec-{spec.pk}"
    assert messages_of(response) == [f"Queued run {run.pk}."]

    again = author_client.post(run_url(spec), follow=True)
    assert ExperimentRun.objects.count() == 1  # a double click never makes two runs
    assert messages_of(again) == [f"Run {run.pk} is already queued."]


def test_run_button_shows_the_cached_run_of_an_identical_spec(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    done = executed(spec, author)
    response = author_client.post(run_url(spec), follow=True)
    assert ExperimentRun.objects.count() == 1
    assert messages_of(response)[0].startswith(f"Already succeeded: showing cached run {done.pk}")


def test_replicate_queues_a_forced_run_and_can_show_it(author_client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    done = executed(spec, author)
    response = author_client.post(run_url(spec), {"force": "1"}, follow=True)
    replication = ExperimentRun.objects.exclude(pk=done.pk).get()
    assert replication.forced and replication.status == RunStatus.QUEUED
    assert messages_of(response) == [f"Queued run {replication.pk} (a replication)."]

    from_run_page = author_client.post(run_url(spec), {"force": "1", "show": "run"})
    newest = ExperimentRun.objects.order_by("-pk").first()
    assert from_run_page["Location"] == newest.get_absolute_url()


def test_anonymous_run_is_sent_to_log_in_and_back(client, hypothesis, author):
    spec = smoke_spec(hypothesis, author)
    response = client.post(run_url(spec))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    assert f"spec-{spec.pk}" in response["Location"]
    assert not ExperimentRun.objects.exists()


def test_run_quota_is_a_429_with_the_reason(author_client, hypothesis, author, settings):
    settings.RUN_QUEUE_CAP_PER_USER = 1
    first, second = smoke_spec(hypothesis, author, title="a"), smoke_spec(hypothesis, author, title="b", steps=4)
    author_client.post(run_url(first))
    response = author_client.post(run_url(second))
    assert response.status_code == 429
    assert "You have 1 queued runs" in html_of(response)
    assert ExperimentRun.objects.count() == 1


def test_a_spec_that_no_longer_validates_is_a_400_naming_the_field(author_client, hypothesis, author):
    spec = ExperimentSpecFactory(idea=hypothesis, author=author, params={"steps": 0})  # as the kind now refuses
    response = author_client.post(run_url(spec))
    assert response.status_code == 400
    assert "params.steps" in html_of(response)
    assert not ExperimentRun.objects.exists()


def test_run_of_an_unknown_spec_is_404_and_get_is_refused(author_client):
    assert author_client.post(reverse("spec-run", kwargs={"pk": 999})).status_code == 404
    assert author_client.get(reverse("spec-run", kwargs={"pk": 999})).status_code == 405


# --- cancel -----------------------------------------------------------------------------------------------


def test_only_the_runs_starter_the_ideas_author_or_staff_may_cancel(client, hypothesis, author):
    starter = UserFactory()
    run = run_trigger(spec=smoke_spec(hypothesis, author), user=starter).run
    cancel = reverse("run-cancel", kwargs={"pk": run.pk})

    anonymous = client.post(cancel)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))

    client.force_login(UserFactory())
    assert "Cancel run" not in html_of(client.get(run.get_absolute_url()))
    refused = client.post(cancel)
    assert refused.status_code == 403
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED

    client.force_login(starter)
    assert "Cancel run" in html_of(client.get(run.get_absolute_url()))
    response = client.post(cancel, follow=True)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert messages_of(response) == [f"Cancelled run {run.pk}."]
    assert response.redirect_chain[-1][0] == run.get_absolute_url()


def test_cancelling_a_running_run_asks_it_to_stop(client, hypothesis, author):
    run = ExperimentRunFactory(spec=smoke_spec(hypothesis, author), created_by=author, status=RunStatus.RUNNING)
    client.force_login(StaffFactory())
    response = client.post(reverse("run-cancel", kwargs={"pk": run.pk}), follow=True)
    run.refresh_from_db()
    assert run.cancel_requested and run.status == RunStatus.RUNNING
    assert messages_of(response) == [f"Asked run {run.pk} to stop; it stops at its next step."]
