"""API test helpers: clients signed in as each role, a clean throttle cache for every test."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.services import token_issue
from tests.factories import IdeaFactory, UserFactory

ROLES = ("anonymous", "user", "author", "staff")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Every role is a user with a password; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clean_throttle_cache():
    """Throttle counts live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


def client_for(user=None) -> APIClient:
    """An APIClient sending `user`'s token (anonymous when None)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=user)}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def author(db):
    return UserFactory()


@pytest.fixture
def authored_idea(author):
    return IdeaFactory(author=author)


@pytest.fixture
def clients(user, author, staff) -> dict[str, APIClient]:
    """One client per role: anonymous, a signed-in user, the author of `authored_idea`, staff."""
    return {
        "anonymous": APIClient(),
        "user": client_for(user),
        "author": client_for(author),
        "staff": client_for(staff),
    }


def assert_error(response, status: int, *, field: str | None = None, code: str | None = None) -> dict:
    """The response is a JSON error body with this status (naming `field`, with `code`)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"], body
    assert body["code"], body
    if field is not None:
        assert field in body["errors"], body
    if code is not None:
        assert body["code"] == code, body
    return body
