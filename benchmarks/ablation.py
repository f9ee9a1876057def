"""Head ablation: the batched method of `head_ablation` beside a one-head-at-a-time loop with TransformerLens hooks.

Both ablate every head of the same seeded 4-layer, 8-head attention-only
TL-native model on the same batch of repeated random tokens, with zero- and
mean-ablation. The loop is what a researcher would write: the
TransformerBridge, one `run_with_hooks` pass per head with a hook on
`blocks.{l}.attn.hook_z` (`per_head_loop`). The batched method is what the kind
calls (`head_ablation`: the lean twin of the bridge, starting from the cached
residual stream; the hand-off of the weights is timed too). Ablating a head in
layer l leaves everything below l unchanged, so the batched method only runs
the layers above it. For 4 layers the compute count alone puts the speedup
near 2.1-2.3x (every variant is still unembedded); the loop also pays for
TransformerLens' explicit attention, so the measured speedup can be higher.
Optionally also times `hook_batched_ablation` (the path for pretrained models).

    python benchmarks/ablation.py [--repeats 5] [--threads N] [--no-hook-batched] [--device cuda]

`--device cuda` (what `scripts/gpu_check.sh` runs on a GPU worker) times the same
methods on the GPU, synchronising before each clock reading, and writes its own
section; there the loop's many small passes leave the GPU mostly idle, so the
goal is a speedup of at least 10x.

Methods are interleaved within each repeat so that load from other processes
hits them alike; medians are reported. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.report import contention_note, write_section  # noqa: E402
from experiments.engine.analysis.ablation import head_ablation, hook_batched_ablation, per_head_loop  # noqa: E402
from experiments.engine.datasets import RepeatedRandomTokens, repeated_random_tokens  # noqa: E402
from experiments.engine.models import NativeConfig, build_native  # noqa: E402

CONFIG = NativeConfig(n_layers=4, n_heads=8, d_model=256, d_head=32, n_ctx=128, d_vocab=1024, attn_only=True)
GOAL_SPEEDUP = {"cpu": 2.0, "cuda": 10.0}
GOAL_DIFF = 1e-5


def synchronize(device: torch.device) -> None:
    """CUDA kernels run asynchronously: wait for them, or the clock stops before the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    fn: Callable[[], tuple[float, torch.Tensor]], device: torch.device
) -> tuple[float, tuple[float, torch.Tensor]]:
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def device_from(name: str) -> torch.device:
    """The device to benchmark on; a clear exit when CUDA is asked for and absent."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in GOAL_SPEEDUP:
        sys.exit(f"--device must be cpu or cuda (cuda:N for another GPU); got {name!r}.")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False).")
    return device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each method, after one warm-up")
    parser.add_argument("--batch", type=int, default=32, help="sequences of repeated random tokens")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-hook-batched", action="store_true", help="skip timing hook_batched_ablation")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (cuda:N for another GPU)")
    args = parser.parse_args()
    device = device_from(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    # The same seeded weights and tokens on either device: both are made on the CPU, then moved.
    bridge = build_native(CONFIG, seed=0, device=device).eval()
    half = (CONFIG.n_ctx - 1) // 2
    data = RepeatedRandomTokens(n_sequences=args.batch, half_length=half, seed=0)
    tokens = repeated_random_tokens(data, d_vocab=CONFIG.d_vocab).to(device)
    methods: dict[str, Callable[[str], Callable[[], tuple[float, torch.Tensor]]]] = {
        "batched (`head_ablation`, cached residual stream)": lambda mode: (
            lambda: head_ablation(bridge, tokens, mode=mode, config=CONFIG)
        ),
        "loop (`per_head_loop`, TL hooks, one head per pass)": lambda mode: (
            lambda: per_head_loop(bridge, tokens, mode=mode)
        ),
    }
    if not args.no_hook_batched:
        methods["hook-batched (`hook_batched_ablation`, per layer)"] = lambda mode: (
            lambda: hook_batched_ablation(bridge, tokens, mode=mode)
        )
    batched_name, loop_name = list(methods)[:2]

    load_before = os.getloadavg()[0]
    rows, speedups, diffs, all_times = [], {}, {}, []
    for mode in ("zero", "mean"):
        calls = {name: make(mode) for name, make in methods.items()}
        results = {name: call() for name, call in calls.items()}  # warm-up, and the values compared
        times: dict[str, list[float]] = {name: [] for name in calls}
        for repeat in range(args.repeats):
            order = list(calls) if repeat % 2 == 0 else list(reversed(calls))
            for name in order:
                times[name].append(timed(calls[name], device)[0])
        all_times += times.values()
        reference = results[loop_name]
        loop_median = statistics.median(times[loop_name])
        for name in calls:
            clean, per_head = results[name]
            diff = max(abs(clean - reference[0]), float((per_head - reference[1]).abs().max()))
            median = statistics.median(times[name])
            speedup = loop_median / median
            rows.append(f"| {name} | {mode} | {median:.2f} | {min(times[name]):.2f} | {speedup:.2f}x | {diff:.1e} |")
            if name == batched_name:
                speedups[mode], diffs[mode] = speedup, diff
    load_after = os.getloadavg()[0]

    n_tokens = args.batch * (2 * half + 1)
    worst_speedup, worst_diff = min(speedups.values()), max(diffs.values())
    goal = GOAL_SPEEDUP[device.type]
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        where = f"on the GPU ({gpu}, torch {torch.__version__}, CUDA {torch.version.cuda})"
    else:
        where = f"on the CPU, {torch.get_num_threads()} torch thread(s)"
    lines = [
        f"Model: TL-native, attention-only, {CONFIG.n_layers} layers x {CONFIG.n_heads} heads, d_model "
        f"{CONFIG.d_model}, d_vocab {CONFIG.d_vocab}, seed 0; data: {args.batch} sequences of {half} repeated random "
        f"tokens ({n_tokens:,} tokens). Wall time of all {CONFIG.n_layers * CONFIG.n_heads} ablations plus the clean "
        f"loss, median (and min) of {args.repeats} interleaved repeats after a warm-up, {where}, "
        f"load average {load_before:.1f} before and {load_after:.1f} after.",
        "",
        "| method | mode | median s | min s | speedup vs loop | max abs diff vs loop |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"**Speedup of the batched method over the loop: {speedups['zero']:.2f}x (zero), {speedups['mean']:.2f}x "
        f"(mean); max abs difference of the losses {worst_diff:.1e}** (goal: at least {goal:.0f}x, equal to "
        f"{GOAL_DIFF:.0e}: {'met' if worst_speedup >= goal and worst_diff <= GOAL_DIFF else 'not met'}).",
    ]
    lines += contention_note(max(max(times) / min(times) for times in all_times), "a method's time")
    if device.type == "cuda":  # its own section: the CPU figures stay beside it
        title = "Head ablation on a GPU (`benchmarks/ablation.py --device cuda`)"
        write_section("ablation-gpu", title, "\n".join(lines))
    else:
        write_section("ablation", "Head ablation (`benchmarks/ablation.py`)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
