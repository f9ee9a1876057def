"""gunicorn settings for the web machine (deploy/systemd/ideas-web.service passes `-c deploy/gunicorn.conf.py`).

Bind address and worker count come from the command line or GUNICORN_CMD_ARGS; what lives here is what
the project needs of any gunicorn: Prometheus' multiprocess mode must be told when a worker process exits
(its live gauges are dropped; its counters and histograms stay summed into later scrapes).
"""

import os

wsgi_app = "config.wsgi"
# Exports and the run pages' first load can take a few seconds on a busy lab; a worker stuck longer is restarted.
timeout = 60
graceful_timeout = 30
# Request lines go to the journal with the rest of the log.
accesslog = "-"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
