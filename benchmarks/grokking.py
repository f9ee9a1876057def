"""Grokking training speed: the `grokking_modular_addition` kind beside a plain-PyTorch loop of the same model.

The same one-layer model (no LayerNorm, 4 heads, ReLU MLP, no attention biases), the same full batch of
training pairs, AdamW with the same betas and weight decay, and the loss in float64 on both sides:

- the kind, as it runs (`run()` with a `RunContext` and a `MemoryReporter`: log-spaced evaluations of train and
  test loss and accuracy on all p^2 pairs, checkpoints); steps per second are measured between two of its
  progress reports (which come with its evaluations), from the first after the warm-up to the last step, so the
  model set-up and the final progress measures are not counted and its own evaluations are;
- a plain-PyTorch model and loop written here (`nn.Embedding`, `nn.Linear`, `scaled_dot_product_attention`), the
  reference. Like the kind it computes the query, attention and MLP of the last position only (the only one the
  loss reads): like with like;
- the same plain model computing all three positions with a causal mask, as a generic transformer would, for
  reference: what reading only the last position saves.

Two sizes: the kind's `cpu` preset (p = 59, 1,044 training pairs) and `nanda2023` (p = 113, 3,830 pairs), both
d_model 128, d_mlp 512.

    python benchmarks/grokking.py [--steps 200] [--nanda-steps 60] [--warmup 30] [--repeats 3] [--threads N]

Trainers are interleaved within each repeat so that load from other processes hits them alike; medians are
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
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from benchmarks.report import contention_note, write_section  # noqa: E402
from benchmarks.timing import TimedReporter, add_common_arguments  # noqa: E402
from experiments.engine.kinds import grokking_modular_addition as kind  # noqa: E402
from experiments.engine.modular_addition import modular_addition_data  # noqa: E402
from experiments.engine.runtime import RunContext  # noqa: E402

SEED = 0
GOAL = 0.8
KIND_NAME = "the kind (`grokking_modular_addition`, as it runs)"
PLAIN_NAME = "plain PyTorch, last position (reference)"
FULL_NAME = "plain PyTorch, all 3 positions"


class PlainOneLayer(nn.Module):
    """One layer, no LayerNorm: embed, attention (no biases), ReLU MLP, unembed; logits at the last position."""

    def __init__(self, p: int, d_model: int, n_heads: int, d_mlp: int, *, all_positions: bool) -> None:
        super().__init__()
        self.n_heads, self.d_head, self.all_positions = n_heads, d_model // n_heads, all_positions
        self.embed = nn.Embedding(p + 1, d_model)
        self.pos = nn.Parameter(torch.randn(3, d_model) / d_model**0.5)
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.o = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))
        self.unembed = nn.Linear(d_model, p, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:  # [batch, 3] -> [batch, p]
        x = self.embed(tokens) + self.pos  # [batch, 3, d_model]
        batch = x.shape[0]
        queries = x if self.all_positions else x[:, -1:]
        q = self.q(queries).view(batch, -1, self.n_heads, self.d_head).transpose(1, 2)
        k, v = self.kv(x).view(batch, 3, 2, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=self.all_positions)  # [batch, head, pos, d_head]
        resid = queries + self.o(z.transpose(1, 2).reshape(batch, -1, self.n_heads * self.d_head))
        resid = resid + self.mlp(resid)
        return self.unembed(resid)[:, -1]


def plain_loop(preset: dict, steps: int, warmup: int, *, all_positions: bool) -> float:
    """Steps per second of a plain full-batch loop with the kind's optimiser and float64 loss."""
    torch.manual_seed(SEED)
    data = modular_addition_data(preset["p"], preset["train_fraction"], seed=SEED)
    tokens, labels = data.tokens[data.train], data.labels[data.train]
    model = PlainOneLayer(
        preset["p"], preset["d_model"], preset["n_heads"], preset["d_mlp"], all_positions=all_positions
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=preset["lr"], weight_decay=preset["weight_decay"],
        betas=(preset["beta1"], preset["beta2"]),
    )  # fmt: skip
    for step in range(1, warmup + steps + 1):
        if step == warmup + 1:
            start = time.perf_counter()
        loss = F.cross_entropy(model(tokens).double(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)


def kind_loop(preset_name: str, steps: int, warmup: int) -> float:
    """Steps per second of the kind's training, from its first report after `warmup` to the last step's."""
    params = kind.Params.model_validate(
        {"preset": preset_name, "steps": warmup + steps, "n_checkpoints": 3, "n_series_points": 20}
    )
    reporter = TimedReporter()  # the kind reports at each logged step
    with tempfile.TemporaryDirectory() as folder:
        kind.run(params, RunContext(seed=SEED, device="cpu", artifact_dir=Path(folder), reporter=reporter))
    logged = params.series_steps()  # reporter.times[i] follows logged[i]
    first = next(i for i, step in enumerate(logged) if step > warmup)
    last = len(logged) - 1
    return (logged[last] - logged[first]) / (reporter.times[last] - reporter.times[first])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps with the cpu preset, after the warm-up")
    parser.add_argument("--nanda-steps", type=int, default=60, help="timed steps with the nanda2023 preset")
    add_common_arguments(parser, warmup=30)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()[0]
    rows, kind_ratios, full_ratios, all_rates = [], {}, {}, []
    for preset_name, steps in (("cpu", args.steps), ("nanda2023", args.nanda_steps)):
        preset = kind.PRESETS[preset_name]
        trainers = {
            PLAIN_NAME: lambda preset=preset, steps=steps: plain_loop(preset, steps, args.warmup, all_positions=False),
            KIND_NAME: lambda preset_name=preset_name, steps=steps: kind_loop(preset_name, steps, args.warmup),
            FULL_NAME: lambda preset=preset, steps=steps: plain_loop(preset, steps, args.warmup, all_positions=True),
        }
        rates: dict[str, list[float]] = {name: [] for name in trainers}
        for repeat in range(args.repeats):
            for name in trainers if repeat % 2 == 0 else reversed(trainers):
                rates[name].append(trainers[name]())
        all_rates += rates.values()
        reference = statistics.median(rates[PLAIN_NAME])
        n_train = round(preset["train_fraction"] * preset["p"] ** 2)
        for name, values in rates.items():
            median = statistics.median(values)
            rows.append(
                f"| {preset_name}: p {preset['p']}, {n_train:,} pairs, {steps} steps | {name} | {median:.1f} | "
                f"{min(values):.1f}-{max(values):.1f} | {median / reference:.2f}x |"
            )
        kind_ratios[preset_name] = statistics.median(rates[KIND_NAME]) / reference
        full_ratios[preset_name] = statistics.median(rates[FULL_NAME]) / reference
    load_after = os.getloadavg()[0]

    met = min(kind_ratios.values()) >= GOAL
    lines = [
        f"One layer, d_model 128, 4 heads, d_mlp 512, no LayerNorm, full batch, AdamW (betas 0.9, 0.98, weight "
        f"decay 1), float64 loss, on the CPU. Steps per second after {args.warmup} warm-up steps, median (and "
        f"range) of {args.repeats} interleaved trainings, {torch.get_num_threads()} torch thread(s), load average "
        f"{load_before:.1f} before and {load_after:.1f} after. The kind's rate includes its own log-spaced "
        "evaluations (train and test loss and accuracy on all pairs); the plain loops evaluate nothing.",
        "",
        "| preset | trainer | steps/s | range | vs plain PyTorch |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        "**Kind / plain PyTorch (last position on both sides): "
        + ", ".join(f"{ratio:.2f}x ({name})" for name, ratio in kind_ratios.items())
        + f"** (goal: at least {GOAL}x: {'met' if met else 'not met'}). Plain PyTorch on all 3 positions / on the "
        "last: " + ", ".join(f"{ratio:.2f}x ({name})" for name, ratio in full_ratios.items()) + ".",
    ]
    lines += contention_note(max(max(values) / min(values) for values in all_rates), "a trainer's speed")
    write_section("grokking", "Grokking training speed (`benchmarks/grokking.py`)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
