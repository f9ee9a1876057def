"""The deployment files agree with what the code needs: the image's user can write what scripts/gpu_check.sh
writes, and the example environment holds no live secret."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_image_user_may_write_what_the_gpu_check_writes():
    dockerfile = (ROOT / "Dockerfile").read_text()
    script = (ROOT / "scripts" / "gpu_check.sh").read_text()
    assert "USER ideas" in dockerfile
    before_user = dockerfile.split("USER ideas")[0]
    chowned = " ".join(re.findall(r"chown (?:-R )?ideas:ideas ([^\n&\\\\]+)", before_user)).split()
    assert "--chown=ideas:ideas . ." in before_user or {"/app/var", "/app/docs/benchmarks.md"} <= set(chowned)
    assert "var/gpu-check" in script  # its report, under /app/var
    assert "benchmarks/ablation.py" in script  # which rewrites its section of docs/benchmarks.md


def test_the_example_environment_sets_no_metrics_token_anyone_could_guess():
    lines = (ROOT / "deploy" / "ideas.env.example").read_text().splitlines()
    assert not [line for line in lines if line.startswith("METRICS_TOKEN=")]
    assert any("secrets.token_urlsafe" in line for line in lines)
