"""Accounts: signing up a researcher from the sign-up page."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser


def user_create(*, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """A new, active, non-staff user with this password (already checked by the sign-up form)."""
    return get_user_model().objects.create_user(username=username, email=email, password=password)
