"""Load generators for benchmarks/api.py: throughput with wrk (or Python threads without it), latency one at a time.

Throughput: `connections` clients sending requests back to back for `seconds`.
wrk (Debian package `wrk`) when it is on PATH: it costs little CPU, which
matters when it shares the cores with the servers it measures. Without it,
Python threads with one HTTP connection each (kept alive where the server
allows) do the same, at a higher cost of their own, the same for both sides.

Latency: one client, one request after another, for `seconds` and at least
`min_requests` requests unless that would outlast `max_seconds` (so a 2-second
search still gives a median without holding up the run), always in
Python: the per-request time of a single client is what the search and list
p50s compare, and a slow request finishing after the window still counts.

Every response must be a 2xx: a 429 or 500 counts as an error, and the
benchmark refuses numbers that contain errors.
"""

from __future__ import annotations

import http.client
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# wrk calls done() once at the end; percentiles and the duration are in microseconds.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    errors: int  # non-2xx answers and failed connections

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def throughput_generator() -> str:
    return "wrk" if wrk_available() else "Python threads (wrk not on PATH)"


def throughput(host: str, port: int, path: str, *, seconds: float, connections: int) -> Load:
    if wrk_available():
        return _wrk(host, port, path, seconds=seconds, connections=connections)
    return _threads(host, port, path, seconds=seconds, connections=connections)


def _wrk(host: str, port: int, path: str, *, seconds: float, connections: int) -> Load:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "report.lua"
        script.write_text(WRK_REPORT)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
        cmd += ["-s", str(script), f"http://{host}:{port}{path}"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    line = next((row for row in out.splitlines() if row.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result for {path}:\n{out}")
    requests, micros, p50, status_errors, socket_errors = (int(x) for x in line.split()[1:])
    return Load(requests, micros / 1e6, p50 / 1000, status_errors + socket_errors)


def _get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def _threads(host: str, port: int, path: str, *, seconds: float, connections: int) -> Load:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        mine, failed = [], 0
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok = 200 <= _get(conn, path) < 300
            except (OSError, http.client.HTTPException):
                conn.close()  # the next request opens a new connection
                ok = False
            if ok:
                mine.append(time.perf_counter() - start)
            else:
                failed += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    start = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    return Load(len(latencies), elapsed, p50, errors[0])


def latency(host: str, port: int, path: str, *, seconds: float, min_requests: int, max_seconds: float) -> Load:
    """One request at a time for `seconds` and at least `min_requests` (but stop after `max_seconds`)."""
    conn = http.client.HTTPConnection(host, port, timeout=120)
    times: list[float] = []
    errors = 0
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and (len(times) >= min_requests or (elapsed >= max_seconds and times)):
            break
        began = time.perf_counter()
        try:
            ok = 200 <= _get(conn, path) < 300
        except (OSError, http.client.HTTPException):
            conn.close()
            ok = False
        if ok:
            times.append(time.perf_counter() - began)
        else:
            errors += 1
            if errors > 20:
                break
    conn.close()
    p50 = statistics.median(times) * 1000 if times else float("nan")
    return Load(len(times), time.perf_counter() - start, p50, errors)
