"""Dispatch latency: trigger -> running for smoke runs, beside Celery's own round trip for an empty task.

Both go through the same broker to the same kind of worker (one prefork
process), one message at a time with the worker idle, so the ratio says what
the run lifecycle (a database insert and commit before sending, a conditional
claim on arrival) adds to Celery itself. Also times a cached re-trigger (an
identical spec that already succeeded), which never touches the broker.

    CELERY_BROKER_URL=redis://127.0.0.1:6379/13 python benchmarks/dispatch.py [--runs 60]

Uses its own database (DATABASE_URL, default a fresh SQLite file in var/) and
writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BROKER = os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("CELERY_RESULT_BACKEND", BROKER)
DB_FILE = ROOT / "var" / "bench-dispatch.sqlite3"
os.environ.setdefault("DATABASE_URL", f"sqlite:///{DB_FILE}")
os.environ.setdefault("ARTIFACT_ROOT", str(ROOT / "var" / "bench-artifacts"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from benchmarks.report import write_section  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_worker() -> subprocess.Popen:
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "cpu,gpu", "-c", "1", "-P", "prefork"]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning", "-n", "bench@%h"]
    log = open(ROOT / "var" / "bench-worker.log", "w")
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="measurements of each kind (at least 50)")
    args = parser.parse_args()
    (ROOT / "var").mkdir(exist_ok=True)
    if DB_FILE.exists() and os.environ["DATABASE_URL"].endswith(str(DB_FILE)):
        DB_FILE.unlink()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from config.celery import app
    from experiments.models import ExperimentRun
    from experiments.services import run_trigger, spec_create
    from experiments.tasks import ping
    from ideas.services import idea_create

    call_command("migrate", verbosity=0)
    with app.connection_for_write() as conn:
        for queue in ("cpu", "gpu"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:
                pass
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    idea = idea_create(author=user, title="Dispatch benchmark", kind="hypothesis")
    spec = spec_create(idea=idea, user=user, title="smoke", kind="smoke", params={"steps": 1})

    worker = start_worker()
    try:
        ping.delay().get(timeout=120)  # the worker is up and warm
        for _ in range(5):
            ping.delay().get(timeout=10)

        round_trips = []
        for _ in range(args.runs):
            start = time.perf_counter()
            ping.delay().get(timeout=10)
            round_trips.append((time.perf_counter() - start) * 1000)

        to_running = []
        for i in range(args.runs + 3):
            started = time.time()
            run = run_trigger(spec=spec, user=user, force=True).run
            while True:
                run.refresh_from_db(fields=["status", "started_at"])
                if run.status in ("succeeded", "failed"):
                    break
                time.sleep(0.002)
            if i >= 3:  # the first runs warm the worker's imports
                to_running.append((run.started_at.timestamp() - started) * 1000)

        cached = []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = run_trigger(spec=spec, user=user)
            cached.append((time.perf_counter() - start) * 1000)
            assert result.cached
        failed = ExperimentRun.objects.exclude(status="succeeded").count()
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)

    p50_rt, p95_rt = percentile(round_trips, 0.5), percentile(round_trips, 0.95)
    p50_run, p95_run = percentile(to_running, 0.5), percentile(to_running, 0.95)
    p50_cached, p95_cached = percentile(cached, 0.5), percentile(cached, 0.95)
    lines = [
        f"Broker `{BROKER.split('@')[-1]}`, database `{django.db.connection.vendor}`, {args.runs} measurements each, "
        f"one prefork worker process, worker idle before each message. Failed runs: {failed}.",
        "",
        "| path | p50 ms | p95 ms | mean ms |",
        "|---|---:|---:|---:|",
        f"| Celery round trip, empty task (send, run, result back) | {p50_rt:.1f} | {p95_rt:.1f} | "
        f"{statistics.mean(round_trips):.1f} |",
        f"| trigger -> running (insert, commit, send, claim) | {p50_run:.1f} | {p95_run:.1f} | "
        f"{statistics.mean(to_running):.1f} |",
        f"| cached re-trigger (identical spec already succeeded) | {p50_cached:.1f} | {p95_cached:.1f} | "
        f"{statistics.mean(cached):.1f} |",
        "",
        f"**Ratio trigger -> running / Celery round trip: p50 {p50_run / p50_rt:.2f}x, p95 {p95_run / p95_rt:.2f}x** "
        "(goal: within 1.5x). Cached re-trigger p50 "
        f"{p50_cached:.1f} ms (goal: under 50 ms).",
    ]
    write_section("dispatch", "Dispatch latency (`benchmarks/dispatch.py`)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
