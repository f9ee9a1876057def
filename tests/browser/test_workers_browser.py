"""The staff page "Workers and queues" in Chromium: reached from the header, and it refreshes itself."""

from __future__ import annotations

import pytest

from experiments.services.workers import WorkerDetails, worker_queues_record
from tests.conftest import needs_chromium
from tests.factories import PASSWORD, StaffFactory

pytestmark = [pytest.mark.browser, needs_chromium]


def test_staff_open_it_from_the_header_and_see_a_new_worker_without_reloading(page):
    staff = StaffFactory(username="operator")
    page.goto("/accounts/login/?next=/runs/")
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/runs/")
    page.get_by_role("link", name="Workers", exact=True).click()
    page.wait_for_url("**/staff/workers/")
    assert page.locator("h1").inner_text() == "Workers and queues"
    assert page.locator(".worker-row").count() == 0

    worker_queues_record(
        worker="celery@gpu-box", queues=["gpu"], details=WorkerDetails(host="gpu-box", pid=9, torch_threads=4)
    )
    row = page.locator('.worker-row[data-worker="celery@gpu-box"]')
    row.wait_for(timeout=25_000)  # the page reloads itself every 10 s
    assert row.locator(".worker-threads").inner_text() == "4"
