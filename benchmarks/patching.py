"""Attribution patching beside exact per-head activation patching: speedup and rank agreement.

Both measure every head's effect on the IOI logit difference (IO − S at END) when its output is patched from
the ABC-corrupted prompts into the clean ones, on the same 4-layer, 8-head attention-only TL-native model in the
IOI word vocabulary and the same IOI prompts (held-out names). Exact patching is what the
`attribution_patching` kind runs beside its estimates (`analysis.patching.head_patching`: per layer, one pass
over the batch repeated once per head, the compute of one forward pass per head); attribution patching
(`analysis.attribution.attribution_patching`) takes two forward passes and one backward pass. The compute count
puts the speedup near (n_layers x n_heads + 2) / (2 + ~2, a backward pass costing about two forward passes):
about 8.5x for 32 heads. The model is trained briefly on ioi_prompts first (`--train-steps`, 0 for a random
model) so that its heads differ; the rank agreement is Spearman's correlation of the two effects over the heads.

    python benchmarks/patching.py [--repeats 5] [--threads N] [--prompts 64] [--train-steps 300]

Methods are interleaved within each repeat so that load from other processes hits them alike; medians are
reported. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.report import contention_note, write_section  # noqa: E402
from experiments.engine.analysis.attribution import attribution_patching  # noqa: E402
from experiments.engine.analysis.patching import head_patching  # noqa: E402
from experiments.engine.analysis.ranks import spearman  # noqa: E402
from experiments.engine.ioi import IOIPrompts, ioi_batch  # noqa: E402
from experiments.engine.lean import to_bridge  # noqa: E402
from experiments.engine.models import NativeConfig, build_native  # noqa: E402
from experiments.engine.prompt_pairs import contrast_from_ioi  # noqa: E402
from experiments.engine.runtime import MemoryReporter, RunContext  # noqa: E402
from experiments.engine.training import TrainingParams, train  # noqa: E402

CONFIG = NativeConfig(n_layers=4, n_heads=8, d_model=256, d_head=32, n_ctx=32, d_vocab=256, attn_only=True)
GOAL_SPEEDUP = 4.0
GOAL_SPEARMAN = 0.7
TOP_K = 5


def model(train_steps: int, scratch: Path):
    if train_steps == 0:
        return build_native(CONFIG, seed=0).eval()
    params = TrainingParams(model=CONFIG, data=IOIPrompts(), steps=train_steps, batch_size=32, n_checkpoints=0,
                            warmup_steps=min(100, train_steps), eval_every=train_steps)  # fmt: skip
    ctx = RunContext(seed=0, device="cpu", artifact_dir=scratch, reporter=MemoryReporter())
    return to_bridge(train(params, ctx).model).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each method, after one warm-up")
    parser.add_argument("--prompts", type=int, default=64, help="IOI prompts (clean and ABC)")
    parser.add_argument("--train-steps", type=int, default=300, help="training steps on ioi_prompts (0: random)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:  # the training's checkpoint, not kept
        bridge = model(args.train_steps, Path(scratch))
    batch = contrast_from_ioi(ioi_batch(IOIPrompts(n_prompts=args.prompts, seed=0), bridge))
    methods = {
        "attribution patching (2 forward, 1 backward)": lambda: (
            attribution_patching(bridge, batch.tokens, batch.corrupt, batch.logit_difference).heads
        ),
        "exact activation patching (`head_patching`)": lambda: (
            head_patching(bridge, batch.tokens, batch.corrupt, batch.logit_difference).effects
        ),
    }
    attribution_name, exact_name = methods
    load_before = os.getloadavg()[0]
    effects = {name: call() for name, call in methods.items()}  # warm-up, and the values compared
    times: dict[str, list[float]] = {name: [] for name in methods}
    for repeat in range(args.repeats):
        for name in list(methods) if repeat % 2 == 0 else list(reversed(methods)):
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]

    estimate, exact = effects[attribution_name].flatten(), effects[exact_name].flatten()
    rho = spearman(estimate, exact)
    overlap = len(set(estimate.abs().topk(TOP_K).indices.tolist()) & set(exact.abs().topk(TOP_K).indices.tolist()))
    medians = {name: statistics.median(t) for name, t in times.items()}
    speedup = medians[exact_name] / medians[attribution_name]
    n_heads = CONFIG.n_layers * CONFIG.n_heads
    with torch.no_grad():
        clean = float(batch.logit_difference(bridge(batch.tokens)).mean())
    rows = [
        f"| {name} | {medians[name]:.3f} | {min(times[name]):.3f} | {medians[exact_name] / medians[name]:.2f}x |"
        for name in methods
    ]
    trained = f"trained {args.train_steps} steps on ioi_prompts" if args.train_steps else "randomly initialised"
    lines = [
        f"Model: TL-native, attention-only, {CONFIG.n_layers} layers x {CONFIG.n_heads} heads, d_model "
        f"{CONFIG.d_model}, the IOI word vocabulary, seed 0, {trained} (clean logit difference {clean:.2f}); data: "
        f"{args.prompts} IOI prompts with held-out names and their ABC corruption. Wall time of every head's effect, "
        f"median (and min) of {args.repeats} interleaved repeats after a warm-up, {torch.get_num_threads()} torch "
        f"thread(s), load average {load_before:.1f} before and {load_after:.1f} after.",
        "",
        "| method | median s | min s | speedup vs exact |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"**Speedup of attribution patching over exact patching: {speedup:.1f}x** (compute count: "
        f"{n_heads} + 2 forward passes against 2 forward + 1 backward, about {(n_heads + 2) / 4:.1f}x); **rank "
        f"agreement over the {n_heads} heads: Spearman {rho:.2f}**, {overlap} of the top {TOP_K} heads by |effect| "
        f"shared (goal: at least {GOAL_SPEEDUP:.0f}x and Spearman {GOAL_SPEARMAN}: "
        f"{'met' if speedup >= GOAL_SPEEDUP and rho >= GOAL_SPEARMAN else 'not met'}).",
    ]
    lines += contention_note(max(max(t) / min(t) for t in times.values()), "a method's time")
    write_section("patching", "Attribution patching vs exact patching (`benchmarks/patching.py`)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
