"""/staff/workers/ "Workers and queues": staff only; live workers, what they run, queue depths, unserved queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import RunStatus, WorkerPresence
from experiments.services.workers import WorkerDetails, worker_queues_record
from tests.factories import ExperimentRunFactory

pytestmark = pytest.mark.django_db

URL = "/staff/workers/"


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/staff/workers/"


def test_signed_in_people_who_are_not_staff_get_403(client, user):
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert URL not in client.get("/runs/").content.decode()  # no link in their navigation


def test_staff_see_workers_their_runs_and_queue_depths(client, staff, settings):
    client.force_login(staff)
    worker_queues_record(
        worker="celery@gpu-box",
        queues=["gpu"],
        details=WorkerDetails(host="gpu-box", pid=100, pool_pids=[101, 102], concurrency=2, torch_threads=4),
    )
    worker_queues_record(
        worker="celery@old-box", queues=["cpu"], details=WorkerDetails(host="old-box", pid=7, torch_threads=1)
    )
    gone = timezone.now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS + 30)
    WorkerPresence.objects.filter(worker="celery@old-box").update(seen_at=gone)
    running = ExperimentRunFactory(
        status=RunStatus.RUNNING, queue="gpu", worker="gpu-box:102", progress=0.42, progress_message="step 42"
    )
    ExperimentRunFactory(spec=running.spec, status=RunStatus.RUNNING, worker="elsewhere:5")
    for _ in range(3):
        ExperimentRunFactory(spec=running.spec, queue="cpu")

    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert '<meta http-equiv="refresh" content="10">' in page
    assert f'href="{URL}" aria-current="page">Workers</a>' in page  # in the staff navigation
    gpu_row = page.split('data-worker="celery@gpu-box"')[1].split("</tr>")[0]
    assert "gpu-box" in gpu_row and '<td class="num worker-concurrency">2</td>' in gpu_row
    assert '<td class="num worker-threads">4</td>' in gpu_row
    assert f'<a href="/runs/{running.pk}/">Run {running.pk}</a>' in gpu_row and "42%" in gpu_row
    old_row = page.split('data-worker="celery@old-box"')[1].split("</tr>")[0]
    assert "worker-stale-tag" in old_row and "idle" in old_row
    cpu_row = page.split('id="queue-cpu"')[1].split("</tr>")[0]
    assert '<td class="num queue-queued">3</td>' in cpu_row
    assert "no live worker consumes the cpu queue" in cpu_row  # the only cpu worker is stale
    gpu_queue = page.split('id="queue-gpu"')[1].split("</tr>")[0]
    assert "celery@gpu-box" in gpu_queue and "no live worker consumes" not in gpu_queue
    assert '<td class="num queue-broker">0</td>' in gpu_queue


def test_the_page_says_when_the_broker_cannot_be_read(client, staff, broker_down):
    client.force_login(staff)
    page = client.get(URL).content.decode()
    assert "Broker depths unknown: the broker does not answer." in page
    assert '<td class="num queue-broker">unknown</td>' in page


def test_the_admin_links_to_it(client, staff):
    client.force_login(staff)
    assert f'href="{URL}">Workers and queues</a>' in client.get("/admin/").content.decode()
