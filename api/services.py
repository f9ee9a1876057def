"""The API's own write: issuing tokens (the catalogue's writes live in ideas.services)."""

from __future__ import annotations

from rest_framework.authtoken.models import Token


def token_issue(*, user) -> str:
    """The user's API token, created on first request (one per user; the same token on every call)."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
