"""A Content-Security-Policy header on every response.

Everything the pages load comes from this site: our scripts and stylesheet,
plotly.js from /static/plotly/, Swagger UI from drf-spectacular-sidecar's static
files. No page has an inline script or an inline event handler (data reaches the
scripts through `data-` attributes and json_script), so scripts need 'self' only
and an injected <script> will not run.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    # 'unsafe-inline' for styles only: plotly.js inserts <style> elements (its modebar and hover
    # labels) as it draws, Swagger UI's page carries a <style> block, and the progress bars set
    # their width in a style attribute. Chromium blocks all three without it (the browser tests
    # report violations). Inline styles cannot run code; scripts stay 'self' only.
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
HEADER = "Content-Security-Policy"
HEADER_VALUE = "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in POLICY.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(HEADER, HEADER_VALUE)
        return response
