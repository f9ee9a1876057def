"""gunicorn settings for the web server: `gunicorn -c config/gunicorn.py` (deploy/systemd/ideas-web.service,
docker-compose.yml).

Only what the project itself needs; bind address, worker count and the rest stay on gunicorn's command
line or in GUNICORN_CMD_ARGS. With PROMETHEUS_MULTIPROC_DIR set (README "Monitoring"), the folder is
emptied when the server starts: each web process writes its request counts there under its pid, and files
left from an earlier start would be added to this one's (and a reused pid would continue an old file).
The request metrics are histograms only, which need no `child_exit` clean-up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

wsgi_app = "config.wsgi"
# Exports and the run pages' first load can take a few seconds on a busy lab; a worker stuck longer is restarted.
timeout = 60
graceful_timeout = 30
# Request lines go to the journal with the rest of the log.
accesslog = "-"


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
