"""Celery application.

The run engine (experiment specs, workers, queues) arrives with the experiments
issue; until then this module only creates the app so `celery -A config` works.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
