"""The Celery app. Configuration comes from Django settings (CELERY_* names); see README "Workers"."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _load_worker_hooks(sender, **_):
    import experiments.worker  # noqa: F401  (connects the reaper to worker_ready)


# Celery's Django fix-up closes the database connection before and after every task unless told
# to reuse it; reusing it saves a connect on every run's claim. Tasks call close_old_connections()
# first, so CONN_MAX_AGE and the health checks still retire old or broken connections. The fix-up
# reads this exact, old-style key.
app.conf["CELERY_DB_REUSE_MAX"] = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
