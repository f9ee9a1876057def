"""Load benchmark of the catalogue's read paths, each side served by gunicorn on this machine.

- the idea list API (`/api/ideas/`, 20 and 50 a page) against a bare Django view returning the same rows
  (benchmarks/bare_app.py): throughput ratio, aim at least 0.5x;
- the HTML list (`/ideas/`) against the list API at 20 a page: throughput ratio, aim at least 0.5x;
- search (`?search=` a rare and a common word, API and HTML) against the unfiltered list: p50 ratio, aim at most 3x.

    python benchmarks/api.py [--ideas 100000] [--quick] [--label before]

Needs PostgreSQL: BENCH_POSTGRES_URL names the server (default: DATABASE_URL's when that is PostgreSQL, else
postgres://postgres@127.0.0.1:5432/postgres). The script makes its own database, `ideas_bench_<ideas>`,
migrates and seeds it (benchmarks/api_data.py; seeded again when the migrations change), and starts two
gunicorns with the same workers and settings (DJANGO_DEBUG=0, throttle rates raised so they never answer 429):
the project (`config.wsgi`) and the bare view (`benchmarks.bare_settings`: only the URLconf differs).
Measurements are interleaved (each endpoint once per round, `--repeats` rounds) and reported as medians, with
the SQL queries each request makes (counted in-process). Other work on the machine moves the absolute numbers;
the ratios are the figures. Writes its section of docs/benchmarks.md (one per size); `--label` also keeps that
run's ratios in the section's table of labelled runs (e.g. before and after a change). `--quick`: a smoke run,
one short round, nothing written; `--seed-only`: seed and count queries, no servers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_DEBUG"] = "0"  # as in production (`make` exports DJANGO_DEBUG=1 for `make run`)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from benchmarks import api_data, load  # noqa: E402
from benchmarks.report import DOC, contention_note, write_section  # noqa: E402

HOST = "127.0.0.1"
WORKERS = 2
RARE, COMMON = api_data.RARE_WORD, api_data.COMMON_WORD
SERVER_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
    "API_THROTTLE_ANON": "1000000/second",
    "API_THROTTLE_WRITE": "1000000/second",
    "LOG_LEVEL": "WARNING",
    "PYTHONPATH": str(ROOT),
}
STATIC_ROOT = ROOT / "var" / "bench-static"


@dataclass(frozen=True)
class Endpoint:
    key: str
    server: str  # "project" or "bare"
    path: str
    label: str


THROUGHPUT = (
    Endpoint("api20", "project", "/api/ideas/?page_size=20", "list API, 20 a page"),
    Endpoint("bare20", "bare", "/bare/ideas/?page_size=20", "bare view, 20 a page"),
    Endpoint("api50", "project", "/api/ideas/?page_size=50", "list API, 50 a page"),
    Endpoint("bare50", "bare", "/bare/ideas/?page_size=50", "bare view, 50 a page"),
    Endpoint("html", "project", "/ideas/", "HTML list `/ideas/` (20 a page)"),
)
LATENCY = (
    Endpoint("api_list", "project", "/api/ideas/", "list API, unfiltered"),
    Endpoint("api_rare", "project", f"/api/ideas/?search={RARE}", f"list API, search {RARE!r} (rare)"),
    Endpoint("api_common", "project", f"/api/ideas/?search={COMMON}", f"list API, search {COMMON!r} (common)"),
    Endpoint("html_list", "project", "/ideas/", "HTML list, unfiltered"),
    Endpoint("html_rare", "project", f"/ideas/?search={RARE}", f"HTML list, search {RARE!r} (rare)"),
    Endpoint("html_common", "project", f"/ideas/?search={COMMON}", f"HTML list, search {COMMON!r} (common)"),
)
SEARCHES = (("api_rare", "api_list"), ("api_common", "api_list"), ("html_rare", "html_list"))
SEARCHES += (("html_common", "html_list"),)


def postgres_server_url() -> str:
    """A URL of the PostgreSQL server's maintenance database, for CREATE and DROP DATABASE."""
    if os.environ.get("BENCH_POSTGRES_URL"):
        return os.environ["BENCH_POSTGRES_URL"]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return database_url(url, "postgres")
    return "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    except OSError:
        return "unknown"
    return sha.stdout.strip() + (" with changes" if dirty else "") if sha.returncode == 0 else "unknown"


# --- in-process checks: the responses are right, and how many queries each request makes ---


def inspect_endpoints() -> tuple[dict[str, int], dict[str, int]]:
    """(SQL queries per request, `count` of each API search); stops when an endpoint fails or the bare view's
    rows differ from the list's."""
    from django.db import connection
    from django.test import Client, RequestFactory
    from django.test.utils import CaptureQueriesContext

    from benchmarks import bare_app

    client, factory = Client(HTTP_HOST=HOST), RequestFactory(HTTP_HOST=HOST)
    queries: dict[str, int] = {}
    bodies: dict[str, object] = {}
    for endpoint in THROUGHPUT + LATENCY:

        def call(endpoint=endpoint):
            if endpoint.server == "bare":
                return bare_app.idea_page(factory.get(endpoint.path))
            return client.get(endpoint.path)

        if endpoint in THROUGHPUT:
            call()  # a process's first request may read what later ones find cached; the searches run these views
        with CaptureQueriesContext(connection) as captured:
            response = call()
        if response.status_code != 200:
            raise SystemExit(f"{endpoint.path} answered {response.status_code}: {response.content[:500]!r}")
        queries[endpoint.key] = len(captured)
        if endpoint.path.startswith(("/api/", "/bare/")):
            bodies[endpoint.key] = json.loads(response.content)
    for size in (20, 50):
        api_ids = [row["id"] for row in bodies[f"api{size}"]["results"]]
        bare_ids = [row["id"] for row in bodies[f"bare{size}"]["results"]]
        if api_ids != bare_ids:
            raise SystemExit(f"The bare view's page of {size} is not the list API's: {bare_ids} != {api_ids}")
    hits = {key: bodies[key]["count"] for key in ("api_rare", "api_common")}
    return queries, hits


# --- servers ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(name: str, settings_module: str, port: int, db_url: str) -> subprocess.Popen:
    env = {**os.environ, **SERVER_ENV, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": settings_module}
    env["STATIC_ROOT"] = str(STATIC_ROOT)
    cmd = [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(WORKERS), "--worker-class", "sync"]
    cmd += ["--bind", f"{HOST}:{port}", "--timeout", "180", "--log-level", "warning"]
    log = open(ROOT / "var" / f"bench-api-{name}.log", "w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(server: subprocess.Popen, port: int, path: str, name: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"The {name} server stopped (exit {server.returncode}); see var/bench-api-{name}.log")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=30) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"The {name} server did not answer {path} within 120 s; see var/bench-api-{name}.log")


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --- measuring ---


def measure(ports: dict[str, int], *, repeats: int, seconds: float, connections: int) -> dict[str, list[load.Load]]:
    """Every endpoint once per round, `repeats` rounds, after a warm-up round; stops on any error answer."""

    def run(endpoint: Endpoint, secs: float) -> load.Load:
        port = ports[endpoint.server]
        if endpoint in THROUGHPUT:
            return load.throughput(HOST, port, endpoint.path, seconds=secs, connections=connections)
        # At least 3 requests, unless a request takes so long that 3 would outlast 2 measurements' time.
        return load.latency(HOST, port, endpoint.path, seconds=secs, min_requests=3, max_seconds=2 * secs)

    # Warm-up: every worker serves the list endpoints. The searches run the same views; a cold first search
    # (index pages not yet in memory) is one of several requests, which the median leaves out.
    for endpoint in THROUGHPUT:
        run(endpoint, 1.0)
    results: dict[str, list[load.Load]] = {e.key: [] for e in THROUGHPUT + LATENCY}
    for round_ in range(repeats):
        for endpoint in THROUGHPUT + LATENCY:
            result = run(endpoint, seconds)
            if result.errors:
                raise SystemExit(
                    f"{endpoint.path}: {result.errors} error answers (non-2xx or failed connections) in "
                    f"{result.requests + result.errors} requests; see var/bench-api-{endpoint.server}.log"
                )
            results[endpoint.key].append(result)
            value = f"{result.rate:.1f} req/s" if endpoint in THROUGHPUT else f"p50 {result.p50_ms:.1f} ms"
            print(f"  round {round_ + 1}: {endpoint.label}: {value} ({result.requests} requests)", flush=True)
    return results


def spread(values: list[float]) -> float:
    return max(values) / min(values) if values and min(values) > 0 else 1.0


def verdict(met: bool) -> str:
    return "met" if met else "not met"


# --- the report ---

KEPT_HEADER = (
    "| run | date | commit | API/bare 20 | API/bare 50 | HTML/API | API search rare, common / list | "
    "HTML search rare, common / list | list API req/s | API search p50 ms rare, common |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def kept_rows(key: str, label: str | None, row: str) -> list[str]:
    """The section's labelled runs: the ones already in docs/benchmarks.md, this run's replacing its label's."""
    text = DOC.read_text() if DOC.exists() else ""
    block = re.search(rf"<!-- {key}-kept:start -->(.*?)<!-- {key}-kept:end -->", text, re.S)
    rows = [line for line in (block.group(1).splitlines() if block else []) if re.match(r"\| (?!run |---)", line)]
    if label:
        rows = [line for line in rows if line.split("|")[1].strip() != label] + [row]
    return rows


def report(args, summary, reused: bool, db_name: str, queries, hits, results, load_before, load_after) -> str:
    import datetime

    from django.conf import settings
    from django.db import connection

    rate = {key: statistics.median(r.rate for r in results[key]) for key in (e.key for e in THROUGHPUT)}
    p50 = {key: statistics.median(r.p50_ms for r in results[key]) for key in (e.key for e in LATENCY)}
    ratio = {"api20": rate["api20"] / rate["bare20"], "api50": rate["api50"] / rate["bare50"]}
    ratio["html"] = rate["html"] / rate["api20"]
    search = {key: p50[key] / p50[base] for key, base in SEARCHES}
    versus = {"api20": ("bare20", "the bare view"), "api50": ("bare50", "the bare view")}
    versus["html"] = ("api20", "the list API at 20")
    lines = [
        f"Data: {summary.describe()} (`{db_name}`, {'reused' if reused else 'seeded for this run'}; "
        f"API `count` for the searches: {hits['api_rare']:,} and {hits['api_common']:,}). "
        f"PostgreSQL {connection.pg_version // 10000}; commit {git_commit()}.",
        "",
        f"Two gunicorns on this machine, {WORKERS} sync workers each, DJANGO_DEBUG=0, throttle rates raised, "
        f"cache `{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}`: "
        "the project (`config.wsgi`) and the bare view (`benchmarks/bare_app.py`: the same settings and middleware, "
        "one `.values()` query of the same columns in the same order, and the count). Throughput: "
        f"{load.throughput_generator()}, {args.connections} connections, {args.duration:g} s per measurement. "
        f"Latency: one Python client, one request at a time, {args.duration:g} s and at least 3 requests "
        f"(fewer when 3 would take over {2 * args.duration:g} s). "
        f"{args.repeats} interleaved rounds, medians (and ranges; a ratio's range is its rounds'); "
        f"load average {load_before:.1f} before and "
        f"{load_after:.1f} after. Queries: SQL statements of one request, counted in-process.",
        "",
        "| endpoint | req/s | range | queries | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for e in THROUGHPUT:
        values = [r.rate for r in results[e.key]]
        shown = "1.00x"
        if e.key in versus:
            base, name = versus[e.key]
            rounds = [a.rate / b.rate for a, b in zip(results[e.key], results[base], strict=True)]
            shown = f"{ratio[e.key]:.2f}x of {name} (rounds {min(rounds):.2f}-{max(rounds):.2f})"
        lines.append(
            f"| {e.label} | {rate[e.key]:.1f} | {min(values):.1f}-{max(values):.1f} | {queries[e.key]} | {shown} |"
        )
    lines += ["", "| request | p50 ms | range | queries | vs unfiltered list |", "|---|---:|---:|---:|---:|"]
    for e in LATENCY:
        values = [r.p50_ms for r in results[e.key]]
        shown = f"{search[e.key]:.2f}x" if e.key in search else "1.00x"
        lines.append(
            f"| {e.label} | {p50[e.key]:.1f} | {min(values):.1f}-{max(values):.1f} | {queries[e.key]} | {shown} |"
        )
    worst_search = max(search.values())
    lines += [
        "",
        f"**List API / bare view: {ratio['api20']:.2f}x (20 a page), {ratio['api50']:.2f}x (50 a page)** "
        f"(aim: at least 0.5x: {verdict(min(ratio['api20'], ratio['api50']) >= 0.5)}); "
        f"**HTML list / list API: {ratio['html']:.2f}x** (aim: at least 0.5x: {verdict(ratio['html'] >= 0.5)}); "
        f"**search p50 / unfiltered list p50: API {search['api_rare']:.1f}x (rare), {search['api_common']:.1f}x "
        f"(common), HTML {search['html_rare']:.1f}x, {search['html_common']:.1f}x** "
        f"(aim: at most 3x: {verdict(worst_search <= 3)}). Queries per list request: "
        f"{queries['api20']} (API, 20 a page), {queries['api50']} (50 a page), {queries['html']} (HTML).",
    ]
    lines += contention_note(
        max(spread([r.rate for r in results[e.key]]) for e in THROUGHPUT), "an endpoint's throughput"
    )
    key = "api" if args.ideas == 10_000 else f"api-{args.ideas}"
    row = (
        f"| {args.label} | {datetime.date.today().isoformat()} | {git_commit()} | {ratio['api20']:.2f}x | "
        f"{ratio['api50']:.2f}x | {ratio['html']:.2f}x | {search['api_rare']:.1f}x, {search['api_common']:.1f}x | "
        f"{search['html_rare']:.1f}x, {search['html_common']:.1f}x | {rate['api20']:.1f} | "
        f"{p50['api_rare']:.0f}, {p50['api_common']:.0f} |"
    )
    kept = kept_rows(key, args.label, row)
    if kept:
        lines += ["", "Labelled runs (`--label`), kept across runs:", "", f"<!-- {key}-kept:start -->"]
        lines += [KEPT_HEADER, *kept, f"<!-- {key}-kept:end -->"]
    body = "\n".join(lines)
    if not args.quick:
        write_section(key, f"List, HTML list and search under load, {args.ideas:,} ideas (`benchmarks/api.py`)", body)
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ideas", type=int, default=10_000, help="ideas in the catalogue (votes and tags scale)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (at least 3 for the doc)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections for throughput")
    parser.add_argument("--label", default=None, help="keep this run's ratios in the doc under this name")
    parser.add_argument("--reseed", action="store_true", help="seed again even when the seed is current")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s, nothing written")
    parser.add_argument("--seed-only", action="store_true", help="seed and count queries, measure nothing")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats = 2.0, 1
    if args.ideas < api_data.RARE_COUNT:
        parser.error(f"--ideas must be at least {api_data.RARE_COUNT}")
    (ROOT / "var").mkdir(exist_ok=True)

    server_url = postgres_server_url()
    db_name = f"ideas_bench_{args.ideas}"
    db_url = database_url(server_url, db_name)
    os.environ["DATABASE_URL"] = db_url
    os.environ["STATIC_ROOT"] = str(STATIC_ROOT)
    os.environ.update({k: v for k, v in SERVER_ENV.items() if k.startswith("API_THROTTLE")})
    stamp = api_data.fingerprint(args.ideas)
    must_seed = api_data.prepare_database(server_url, db_name, stamp, force=args.reseed)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    if "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]:
        call_command("collectstatic", "--no-input", verbosity=0)  # pages fail without the manifest
    if must_seed:
        started = time.perf_counter()
        print(f"Seeding {db_name} with {args.ideas:,} ideas...", flush=True)
        summary = api_data.seed(args.ideas)
        api_data.mark_seeded(server_url, db_name, stamp)
        print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
    else:
        summary = api_data.summary_of_database()
    print(f"Data: {summary.describe()}", flush=True)
    api_data.check_seed_matches_services()
    queries, hits = inspect_endpoints()
    print(f"Queries per request: {queries}", flush=True)
    connections.close_all()
    if args.seed_only:
        return

    ports = {"project": free_port(), "bare": free_port()}
    servers = {
        "project": start_server("project", "config.settings", ports["project"], db_url),
        "bare": start_server("bare", "benchmarks.bare_settings", ports["bare"], db_url),
    }
    try:
        wait_ready(servers["project"], ports["project"], "/api/ideas/", "project")
        wait_ready(servers["bare"], ports["bare"], "/bare/ideas/", "bare")
        load_before = os.getloadavg()[0]
        print(f"Measuring ({load.throughput_generator()} for throughput)...", flush=True)
        results = measure(ports, repeats=args.repeats, seconds=args.duration, connections=args.connections)
        load_after = os.getloadavg()[0]
    finally:
        for server in servers.values():
            stop_server(server)
    print(report(args, summary, not must_seed, db_name, queries, hits, results, load_before, load_after))


if __name__ == "__main__":
    main()
