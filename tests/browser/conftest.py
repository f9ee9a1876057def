"""What every page test shares: a page in a fresh browser context, watched for Content-Security-Policy blocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.csp_watch import watch_csp


@pytest.fixture
def page(browser, live_server) -> Iterator:
    """A page on the live server (relative URLs work); the test fails if the CSP blocked anything on it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    csp_violations = watch_csp(page)
    yield page
    context.close()
    assert not csp_violations, "the Content-Security-Policy blocked something:\n" + "\n".join(csp_violations)
