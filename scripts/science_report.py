"""What each test seed gives: the table in docs/science.md (between its `science` markers).

Trains the models `tests/engine/test_induction_science.py` trains (the same seeds and
settings, two at a time), or reads the checkpoints a run of that test left behind
(`--checkpoints /tmp/pytest-of-$USER/pytest-N/science0`), then runs `head_detection`
and `checkpoint_pca` on each and writes one row per seed.

    .venv/bin/python scripts/science_report.py [--checkpoints DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.engine.errors import ModelNotAvailable  # noqa: E402
from experiments.engine.kinds import register_kinds  # noqa: E402
from experiments.engine.models import read_checkpoint_config  # noqa: E402
from tests.engine.conftest import LocalRuns  # noqa: E402
from tests.engine.test_induction_science import MODELS, SHIFTED_CIRCUIT, TEST_SEEDS, _train  # noqa: E402

DOC = ROOT / "docs" / "science.md"


class SavedRuns(LocalRuns):
    """LocalRuns that also reads the checkpoints a test run saved: run `FIRST + i` is the i-th folder."""

    FIRST = 1000

    def __init__(self, root: Path, folders: list[Path]) -> None:
        super().__init__(root)
        self.folders = folders

    def checkpoints(self, run_id: int) -> list[tuple[int, str]]:
        files = self.folders[run_id - self.FIRST].glob("*/checkpoint-*.safetensors")
        return sorted((read_checkpoint_config(f)[1]["step"], f.stem) for f in files)

    def artifact_path(self, run_id: int, name: str) -> Path:
        if run_id < self.FIRST:
            return super().artifact_path(run_id, name)
        found = list(self.folders[run_id - self.FIRST].glob(f"*/{name}.safetensors"))
        if not found:
            raise ModelNotAvailable(f"no {name} in {self.folders[run_id - self.FIRST]}")
        return found[0]


def trained_folders(args) -> Path:
    if args.checkpoints:
        return Path(args.checkpoints)
    root = Path(tempfile.mkdtemp(prefix="science-"))
    jobs = [(name, {"model": override}, seed, str(root)) for name, override in MODELS.items() for seed in TEST_SEEDS]
    jobs.append(("shifted", SHIFTED_CIRCUIT[0], SHIFTED_CIRCUIT[1], str(root)))
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_train, jobs))
    return root


def analyse(root: Path) -> dict:
    register_kinds()
    keys = [(name, seed) for name in MODELS for seed in TEST_SEEDS]
    runs = SavedRuns(Path(tempfile.mkdtemp(prefix="science-analysis-")), [root / f"{n}-{s}" for n, s in keys])
    found = {}
    for i, key in enumerate(keys):
        run_id = SavedRuns.FIRST + i
        last = runs.checkpoints(run_id)[-1][1]
        heads = runs.run("head_detection", {"model": {"source": "run", "run": run_id, "artifact": last}})[1]
        pca = runs.run("checkpoint_pca", {"run": run_id})[1] if key[0] in ("two_layer", "one_layer") else None
        found[key] = (heads.metrics, pca.metrics if pca else {})
        print(key, round(heads.metrics["max_induction_score"], 3), flush=True)
    return found


def table(found: dict) -> str:
    def cell(name: str, seed: int, metric: str, digits: int = 2) -> str:
        value = found[(name, seed)][0].get(metric)
        return "–" if value is None else f"{value:.{digits}f}"

    def trajectory(name: str, seed: int) -> str:
        metrics = found[(name, seed)][1]
        parts = [f"burst {metrics.get('strongest_burst_ratio', float('nan')):.2f}x"]
        if "change_point_step" in metrics:
            parts.append(f"change point {metrics['change_point_step']:.0f} (p {metrics['change_point_p']:.2g})")
        else:
            parts.append("no change point")
        if "induction_formation_step" in metrics:
            parts.append(f"formed {metrics['induction_formation_step']:.0f}")
        parts.append(f"ICL jump {metrics['largest_icl_change_step']:.0f}")
        return ", ".join(parts)

    rows = [
        "| seed | 2L induction (vocab 64) | 2L induction (48) | 2L copying (96) | 1L induction | "
        "2L trajectory | 1L trajectory |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for seed in TEST_SEEDS:
        rows.append(
            f"| {seed} | {cell('two_layer', seed, 'max_induction_score')} "
            f"| {cell('two_layer_vocab48', seed, 'max_induction_score')} "
            f"| {cell('two_layer_vocab96', seed, 'max_copying_score')} "
            f"| {cell('one_layer', seed, 'max_induction_score', 3)} "
            f"| {trajectory('two_layer', seed)} | {trajectory('one_layer', seed)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", help="a science0 folder a test run left behind (skips training)")
    args = parser.parse_args()
    body = (
        "Best score of any head at step 3000 (induction ≥ 0.5 and copying ≥ 0.5 are the claims), and the "
        "checkpoint trajectory: the largest burst of its speed over the trend, the significant change point "
        "if any, the first checkpoint with an induction score ≥ 0.4, and the checkpoint ending the largest "
        "jump of the in-context-learning score.\n\n" + table(analyse(trained_folders(args)))
    )
    text = DOC.read_text()
    block = f"<!-- science:start -->\n{body}\n<!-- science:end -->"
    DOC.write_text(re.sub(r"<!-- science:start -->.*?<!-- science:end -->", lambda _: block, text, flags=re.S))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
