"""Celery tasks: fetch by id, call a service, nothing else."""

from celery import shared_task
from django.db import close_old_connections

from experiments.services import run_execute


@shared_task(name="experiments.execute_run", Request="experiments.worker:RunRequest", ignore_result=True)
def execute_run(run_id: int) -> None:
    # Connections are reused across tasks (CELERY_DB_REUSE_MAX): retire a dead or too-old one first.
    close_old_connections()
    run_execute(run_id=run_id)


@shared_task(name="experiments.ping", ignore_result=False)
def ping() -> str:
    """An empty task: proves a worker answers, and is the baseline of benchmarks/dispatch.py."""
    return "pong"
