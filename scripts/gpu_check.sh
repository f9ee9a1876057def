#!/usr/bin/env bash
# The GPU check, on a GPU worker (docs/deploy.md, "GPU workers"):
#   1. torch sees a CUDA device (else it stops here and says what to install);
#   2. the suite's GPU-marked tests (`pytest -m gpu`: kinds on cuda agree with the CPU);
#   3. the head-ablation benchmark on the GPU (`benchmarks/ablation.py --device cuda`; aim: the batched
#      method at least 10x the TransformerLens hook loop), which rewrites its section of docs/benchmarks.md.
# Everything it prints is also kept in $GPU_CHECK_DIR (default var/gpu-check/): report.md, pytest.log.
#
#   scripts/gpu_check.sh                         # the first visible GPU
#   CUDA_VISIBLE_DEVICES=1 scripts/gpu_check.sh  # another one
#
# Exit status: 0 all passed (the benchmark's goal is reported, not enforced: timings vary with load),
# 2 no CUDA device, 1 a GPU test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The project's environment (.venv, as `make install` makes it), else the image's python (Dockerfile).
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
PY=${PYTHON:-$(command -v python3 || echo .venv/bin/python)}
OUT=${GPU_CHECK_DIR:-var/gpu-check}
mkdir -p "$OUT"
REPORT="$OUT/report.md"

if [ ! -x "$PY" ]; then
  echo "gpu_check: $PY not found. Install the project first (make install, then the CUDA build of torch:" >&2
  echo "docs/deploy.md, 'GPU workers'), or set PYTHON=/path/to/python." >&2
  exit 2
fi

# The tests and the benchmark need neither the lab's database nor its broker: keep them off both, so a
# worker's environment file cannot point the test run at production.
unset DATABASE_URL CELERY_BROKER_URL REDIS_CACHE_URL

"$PY" - <<'EOF' || exit 2
import sys

import torch

if not torch.cuda.is_available():
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "the CPU-only build"
    sys.exit(
        f"gpu_check: torch {torch.__version__} ({build}) sees no CUDA device, so there is nothing to check.\n"
        "On a GPU worker: check the driver (nvidia-smi), CUDA_VISIBLE_DEVICES, and that the CUDA build of torch\n"
        "is installed (docs/deploy.md, 'GPU workers')."
    )
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s):")
for index in range(torch.cuda.device_count()):
    props = torch.cuda.get_device_properties(index)
    print(f"  cuda:{index} {props.name}, {props.total_memory / 2**30:.0f} GiB")
EOF

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname)"
  echo
  "$PY" -c "import torch; print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}')"
  echo
} >"$REPORT"

echo "gpu_check: running the GPU-marked tests (pytest -m gpu)"
set +e
"$PY" -m pytest -m gpu -q -rs -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log"
tests_status=${PIPESTATUS[0]}
set -e
{
  echo "## GPU-marked tests (pytest -m gpu)"
  echo
  echo '```'
  tail -n 15 "$OUT/pytest.log"
  echo '```'
  echo
} >>"$REPORT"
if [ "$tests_status" -ne 0 ]; then
  echo "gpu_check: the GPU tests failed (pytest exit $tests_status); see $OUT/pytest.log. No benchmark." >&2
  exit 1
fi
if grep -q "skipped" "$OUT/pytest.log"; then
  echo "gpu_check: some GPU tests were skipped although CUDA is available; see $OUT/pytest.log." >&2
  exit 1
fi

echo "gpu_check: timing head ablation on the GPU (benchmarks/ablation.py --device cuda)"
{
  echo "## Head ablation on the GPU (benchmarks/ablation.py --device cuda)"
  echo
  "$PY" benchmarks/ablation.py --device cuda
} | tee -a "$REPORT"

echo
echo "gpu_check: done. The benchmark rewrote its section of docs/benchmarks.md (ablation-gpu);"
echo "the whole report is in $REPORT. Commit docs/benchmarks.md to record the result."
