"""Every failure under /api/ is JSON: unknown paths, server errors, service refusals."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from api.exceptions import api_exception_handler, error_body
from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope/", "/api/ideas/abc/", "/api/ideas/1/votes/", "/api/v2/ideas/"])
def test_unknown_paths_are_json_404(anon_client, path):
    body = assert_error(anon_client.get(path), 404, code="not_found")
    assert path in body["detail"]


def test_missing_slash_gets_a_hint_not_a_redirect(user):
    response = client_for(user).post("/api/ideas", {"title": "x", "kind": "hypothesis"}, format="json")
    body = assert_error(response, 404)
    assert "Did you mean /api/ideas/" in body["detail"]


def test_service_validation_error_names_the_field():
    response = api_exception_handler(ValidationError({"status": ["Not for this kind."]}), {})
    assert response.status_code == 400
    assert response.data == {
        "detail": "Invalid input: status.",
        "code": "invalid",
        "errors": {"status": ["Not for this kind."]},
    }


def test_service_validation_error_without_field():
    response = api_exception_handler(ValidationError("Nope."), {})
    assert response.data == {"detail": "Nope.", "code": "invalid", "errors": {"non_field_errors": ["Nope."]}}


def test_service_permission_denied_keeps_its_message():
    response = api_exception_handler(PermissionDenied("Only staff can change an idea's status."), {})
    assert response.status_code == 403
    assert response.data == {"detail": "Only staff can change an idea's status.", "code": "permission_denied"}


def test_nested_errors_are_dotted():
    from rest_framework.exceptions import ValidationError as DRFValidationError

    body = error_body(DRFValidationError({"tags": {0: ["Too long."]}, "title": ["Required."]}))
    assert body["errors"] == {"tags.0": ["Too long."], "title": ["Required."]}
    assert body["detail"] == "Invalid input: tags.0, title."


def test_unexpected_error_is_a_json_500(anon_client, idea, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("api.views.ideas.idea_detail", broken)
    body = assert_error(anon_client.get(f"/api/ideas/{idea.pk}/"), 500, code="server_error")
    assert "boom" not in body["detail"]
    assert "boom" in caplog.text  # logged, with the traceback, for the operator


def test_method_not_allowed_is_json(anon_client):
    assert_error(anon_client.delete("/api/tags/"), 405, code="method_not_allowed")
