"""/api/docs/: Swagger UI renders in a real browser with no network beyond this server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.conftest import needs_chromium
from tests.csp_watch import watch_csp

SCREENSHOT = "/tmp/api_docs.png"


@pytest.mark.browser
@needs_chromium
def test_swagger_ui_shows_the_operations_offline(browser, live_server):
    requested: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.on("request", lambda request: requested.append(request.url))
    csp_violations = watch_csp(page)
    response = page.goto(f"{live_server.url}/api/docs/")
    assert response is not None and response.status == 200
    assert "script-src 'self';" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    title = page.locator(".info .title").inner_text()
    page.screenshot(path=SCREENSHOT, full_page=True)

    assert "AI-safety research ideas API" in title
    normalized = {path.replace("\u200b", "") for path in paths}  # Swagger UI puts zero-width spaces in paths
    assert {"/api/ideas/", "/api/ideas/{id}/vote/", "/api/ideas/export/", "/api/auth/token/"} <= normalized
    web = [url for url in requested if urlsplit(url).scheme in ("http", "https", "ws", "wss")]
    assert any("/static/drf_spectacular_sidecar/" in url for url in web)
    assert {urlsplit(url).hostname for url in web} <= {urlsplit(live_server.url).hostname}, web
    assert not csp_violations, csp_violations
