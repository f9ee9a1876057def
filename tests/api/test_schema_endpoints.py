"""GET /api/schema/ and /api/docs/: the OpenAPI document and the page that shows it, with no CDN."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.django_db

OPERATIONS = {
    "/api/ideas/": {"get", "post"},
    "/api/ideas/{id}/": {"get", "patch", "delete"},
    "/api/ideas/{id}/vote/": {"post", "delete"},
    "/api/ideas/{id}/status/": {"post"},
    "/api/ideas/{id}/status-history/": {"get"},
    "/api/ideas/{id}/links/": {"post"},
    "/api/ideas/export/": {"get"},
    "/api/tags/": {"get"},
    "/api/collections/": {"get"},
    "/api/auth/token/": {"post"},
    "/api/experiment-kinds/": {"get"},
    "/api/experiment-kinds/{key}/": {"get"},
    "/api/experiments/": {"get", "post"},
    "/api/experiments/{id}/": {"get"},
    "/api/experiments/{id}/runs/": {"post"},
    "/api/runs/": {"get"},
    "/api/runs/{id}/": {"get"},
    "/api/runs/{id}/cancel/": {"post"},
    "/api/runs/{id}/artifacts/{name}/": {"get"},
    "/api/datasets/": {"get", "post"},
    "/api/datasets/{id}/": {"get", "delete"},
}


def test_schema_lists_every_operation(anon_client):
    response = anon_client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items()} == OPERATIONS
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_as_json(anon_client):
    response = anon_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert json.loads(response.content)["info"]["title"] == "AI-safety research ideas API"


def test_docs_page_uses_local_static_files(anon_client):
    html = anon_client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "https://" not in html
