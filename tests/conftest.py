import pytest
from django.db import connection

from tests.factories import PASSWORD, IdeaFactory, StaffFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def idea(db):
    return IdeaFactory()


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (as .ci/run does)")
