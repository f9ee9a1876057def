import os

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


@pytest.fixture(scope="session", autouse=True)
def celery_broker(tmp_path_factory):
    """Point this process's Celery app at a broker of the test session's own; returns the env for workers.

    Redis when CELERY_BROKER_URL names it (CI), purged first; else a filesystem broker in a temporary
    folder, so a `make run` worker never sees test tasks.
    """
    from config.celery import app

    url = os.environ.get("CELERY_BROKER_URL", "")
    if url.startswith("redis://"):
        app.conf.broker_url = url
        app.conf.broker_transport_options = {"visibility_timeout": 3600}
        with app.connection_for_write() as conn:
            for queue in ("cpu", "gpu"):
                try:
                    conn.default_channel.queue_purge(queue)
                except Exception:  # the queue does not exist yet
                    pass
        return {"CELERY_BROKER_URL": url}
    folder = tmp_path_factory.mktemp("broker")
    app.conf.broker_url = "filesystem://"
    app.conf.broker_transport_options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
    }
    return {"CELERY_BROKER_URL": "filesystem://", "CELERY_FS_BROKER_DIR": str(folder)}


@pytest.fixture
def no_broker(monkeypatch, settings, tmp_path):
    """Runs execute in-process: record the ids that would be sent to the broker instead of sending them."""
    from experiments.services import runs as runs_module

    settings.ARTIFACT_ROOT = tmp_path
    sent: list[int] = []
    monkeypatch.setattr(runs_module, "_send", lambda run: sent.append(run.pk))
    return sent


CHROMIUM = "/usr/bin/chromium"
# Headless, and quiet on a machine without internet: no background requests to Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}")


@pytest.fixture
def browser(live_server, transactional_db, monkeypatch):
    """Debian's Chromium driven by Playwright, for pages served by pytest-django's live server."""
    # Playwright's sync API runs an event loop in this thread; the live server's ORM calls happen in
    # its own thread, but Django's async guard would trip on the test's own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # The test's own ORM calls ran inside Playwright's greenlet, which has a connection of its own: close it,
        # or PostgreSQL refuses to drop the test database while it is open.
        connections.close_all()


DEAD_BROKER = "redis://127.0.0.1:1/5"  # nothing listens on port 1


@pytest.fixture
def broker_down(monkeypatch):
    """This process's Celery app points at a Redis that refuses connections, until the test ends."""
    from config.celery import app

    # Read before the variable changes: the first read of app.conf takes CELERY_BROKER_URL from the environment.
    saved = app.conf.broker_url, app.conf.broker_transport_options
    monkeypatch.setenv("CELERY_BROKER_URL", DEAD_BROKER)  # Celery reads it before its own setting
    app.conf.broker_url, app.conf.broker_transport_options = DEAD_BROKER, {}
    yield DEAD_BROKER
    app.conf.broker_url, app.conf.broker_transport_options = saved


@pytest.fixture
def broker_silent(monkeypatch):
    """This process's Celery app points at a "Redis" that accepts connections but never answers."""
    import socket

    from config.celery import app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/5"
    saved = app.conf.broker_url, app.conf.broker_transport_options
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    app.conf.broker_url, app.conf.broker_transport_options = url, {}
    yield url
    app.conf.broker_url, app.conf.broker_transport_options = saved
    listener.close()
