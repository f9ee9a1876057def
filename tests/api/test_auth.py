"""POST /api/auth/token/, and how token and session callers are told apart from anonymous ones."""

from __future__ import annotations

import pytest
from django.middleware.csrf import get_token
from django.test import RequestFactory
from rest_framework.test import APIClient

from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db
TOKEN_URL = "/api/auth/token/"


def test_token_for_username_and_password(anon_client, user, password):
    response = anon_client.post(TOKEN_URL, {"username": user.username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    again = anon_client.post(TOKEN_URL, {"username": user.username, "password": password}, format="json")
    assert again.json()["token"] == token

    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = anon_client.post("/api/ideas/", {"title": "With a token", "kind": "hypothesis"}, format="json")
    assert created.status_code == 201 and created.json()["author"] == user.username


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "user0", "password": "wrong"}, "non_field_errors"),
        ({"username": "nobody", "password": "x"}, "non_field_errors"),
        ({"password": "x"}, "username"),
        ({"username": "x"}, "password"),
    ],
)
def test_bad_credentials_are_400(anon_client, user, payload, field):
    body = assert_error(anon_client.post(TOKEN_URL, payload, format="json"), 400, field=field)
    if field == "non_field_errors":
        assert "credentials" in body["detail"]


def test_a_stale_token_does_not_block_getting_a_new_one(user, password):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.post(TOKEN_URL, {"username": user.username, "password": password}, format="json").status_code == 200


def test_bad_token_is_401_everywhere(idea):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    for response in (client.get("/api/ideas/"), client.post(f"/api/ideas/{idea.pk}/vote/")):
        body = assert_error(response, 401, code="authentication_failed")
        assert body["detail"] == "Invalid token."
        assert response["WWW-Authenticate"] == "Token"


def test_session_login_works_too(user, password, idea):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=password)
    assert client.get(f"/api/ideas/{idea.pk}/").json()["can_edit"] is False
    # A session write needs the CSRF token, as a page's script would send it.
    assert_error(client.post(f"/api/ideas/{idea.pk}/vote/"), 403, code="permission_denied")
    request = RequestFactory().get("/")
    masked = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]
    response = client.post(f"/api/ideas/{idea.pk}/vote/", HTTP_X_CSRFTOKEN=masked)
    assert response.status_code == 200, response.content


def test_anonymous_write_is_401_with_www_authenticate(anon_client, idea):
    response = anon_client.post(f"/api/ideas/{idea.pk}/vote/")
    assert_error(response, 401, code="not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_token_endpoint_takes_only_post(user):
    assert_error(client_for(user).get(TOKEN_URL), 405)
