"""Settings come from the environment: debug off by default, a local secret key made once, deploy checks clean."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT_SETTINGS = "import config.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)"


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, code, *args] if code.endswith(".py") else [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def key_file(tmp_path):
    return tmp_path / "var" / "secret_key"


def test_debug_is_off_unless_asked_for(key_file):
    result = _run(PRINT_SETTINGS, DJANGO_SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['127.0.0.1', 'localhost']"


def test_debug_off_without_a_key_makes_one_once_readable_only_by_its_owner(key_file):
    print_key = "import config.settings as s; print(s.SECRET_KEY)"
    first = _run(print_key, DJANGO_DEBUG="0", DJANGO_SECRET_KEY_FILE=str(key_file))
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50 and "dev-only" not in key
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = _run(print_key, DJANGO_DEBUG="0", DJANGO_SECRET_KEY_FILE=str(key_file))
    assert second.stdout.strip() == key  # sessions survive a restart


def test_a_given_key_wins_over_the_local_file(key_file):
    result = _run(
        "import config.settings as s; print(s.SECRET_KEY)",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_SECRET_KEY_FILE=str(key_file),
    )
    assert result.stdout.strip() == "k" * 50
    assert not key_file.exists()


def test_debug_off_refuses_the_development_secret_key_and_says_why(key_file):
    result = _run(PRINT_SETTINGS, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="dev-only-insecure-secret-key-do-not-deploy")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is the development key" in result.stderr


def test_debug_off_starts_with_a_real_secret_key():
    result = _run(
        PRINT_SETTINGS, DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 50, DJANGO_ALLOWED_HOSTS="ideas.example"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['ideas.example']"


def test_a_malformed_boolean_is_an_error_not_a_guess():
    result = _run(PRINT_SETTINGS, DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be one of" in result.stderr


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "Zq8-not-a-real-key-but-long-and-varied-enough-3fK9pL2xV7mN4bR6tY1wE5uI0oA",
    "DJANGO_ALLOWED_HOSTS": "ideas.example.org",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
}


def test_check_deploy_is_clean_with_production_settings():
    result = _run("manage.py", "check", "--deploy", "--fail-level", "DEBUG", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_names_what_the_safe_defaults_leave_to_the_operator():
    """Without the DJANGO_SECURE_* settings only the HTTPS warnings remain: redirect and HSTS are opt-in."""
    env = {k: v for k, v in PRODUCTION.items() if not k.startswith("DJANGO_SECURE_")}
    result = _run("manage.py", "check", "--deploy", **env)
    assert result.returncode == 0, result.stderr
    warnings = set(re.findall(r"^\?: \((\w+\.\w+)\)", result.stderr, flags=re.MULTILINE))
    assert warnings == {"security.W004", "security.W008"}, result.stderr


def test_the_example_metrics_token_is_refused_with_how_to_make_one():
    result = _run(PRINT_SETTINGS, METRICS_TOKEN="change-me")
    assert result.returncode != 0
    assert "METRICS_TOKEN is the example's placeholder" in result.stderr and "secrets.token_urlsafe" in result.stderr
    assert _run(PRINT_SETTINGS, METRICS_TOKEN="a-real-token-nobody-guesses").returncode == 0
