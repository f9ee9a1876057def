"""The Content-Security-Policy header is on every response, and the admin works under it in Chromium."""

from __future__ import annotations

import pytest

from config.csp import HEADER_VALUE
from tests.conftest import needs_chromium
from tests.csp_watch import watch_csp
from tests.factories import PASSWORD, IdeaFactory, StaffFactory


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/ideas/", "/api/ideas/", "/api/docs/", "/admin/login/", "/no-such-page/", "/api/x/"])
def test_every_response_carries_the_policy(client, url):
    policy = client.get(url)["Content-Security-Policy"]
    assert policy == HEADER_VALUE
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'self'"
    assert directives["form-action"] == "'self'" and directives["img-src"] == "'self' data:"


@pytest.mark.django_db
def test_swagger_ui_start_up_script_is_served_separately(client):
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page.replace(" ", "")  # every script has a src
    script = client.get("/api/docs/?script")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.mark.browser
@needs_chromium
def test_the_admin_works_under_the_policy(browser, live_server):
    StaffFactory(username="admin-user", is_superuser=True)
    IdeaFactory(title="An idea in the admin")
    page = browser.new_page()
    violations = watch_csp(page)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin-user")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/ideas/idea/")
    assert page.locator("text=An idea in the admin").count() == 1
    page.click("text=An idea in the admin")
    page.wait_for_selector("#idea_form")
    assert not violations, violations
