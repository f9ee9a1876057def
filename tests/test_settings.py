"""Settings come from the environment; debug off refuses the development secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _import_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_refuses_the_development_secret_key_and_says_why():
    result = _import_settings(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_off_starts_with_a_real_secret_key():
    result = _import_settings(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 50, DJANGO_ALLOWED_HOSTS="ideas.example")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['ideas.example']"


def test_a_malformed_boolean_is_an_error_not_a_guess():
    result = _import_settings(DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be one of" in result.stderr
