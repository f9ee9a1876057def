"""Training speed: the `train_transformer` loop beside a plain-PyTorch loop of the same model, steps per second.

Three trainers of the same architecture (TL-native: learned positions,
pre-LayerNorm blocks, attention with biases, an unembedding without bias), on
the same batches (`induction_batch` from the same seed), with AdamW and the
same warm-up + cosine learning-rate schedule:

- `train()` from `experiments.engine.training`, as the kind runs it (loss logged
  every 10 steps, in-context evaluation every 100, progress every step, a
  `RunContext` with a `MemoryReporter`), with one checkpoint at the last step;
  steps per second are measured between progress reports, after a warm-up,
  so the model set-up and the final checkpoint and evaluation are not counted;
- a plain-PyTorch model and loop written here (fused QKV projection and
  `scaled_dot_product_attention`, nanoGPT style), the reference;
- a TransformerBridge (`build_native`) trained directly with the same loop, for
  reference: TransformerLens' own modules compute attention explicitly.

Two sizes: the kind's default model (2 layers, d_model 64, n_ctx 64, d_vocab 64)
and a larger one (d_model 256, n_ctx 128, d_vocab 1024), both batch 32.

    python benchmarks/training.py [--steps 300] [--larger-steps 200] [--warmup 50] [--repeats 3] [--threads N]

Trainers are interleaved within each repeat so that load from other processes
hits them alike; medians are reported. Writes its section of docs/benchmarks.md.
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
from experiments.engine.datasets import InductionTraining, induction_batch  # noqa: E402
from experiments.engine.lean import cosine_lr  # noqa: E402
from experiments.engine.models import NativeConfig, build_native  # noqa: E402
from experiments.engine.runtime import RunContext  # noqa: E402
from experiments.engine.training import SMALL_ATTN_ONLY, TrainingParams, train  # noqa: E402

SIZES = {
    "default (kind)": SMALL_ATTN_ONLY,
    "larger": NativeConfig(n_layers=2, n_heads=8, d_model=256, d_head=32, n_ctx=128, d_vocab=1024, attn_only=True),
}
BATCH = 32
SEED = 0
GOAL = 0.8


# -- the plain-PyTorch reference -------------------------------------------------------------------


class PlainBlock(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        inner = config.n_heads * config.d_head
        self.n_heads, self.d_head, self.attn_only = config.n_heads, config.d_head, config.attn_only
        self.ln1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * inner)
        self.proj = nn.Linear(inner, config.d_model)
        if not config.attn_only:
            d_mlp = config.d_mlp or 4 * config.d_model
            self.ln2 = nn.LayerNorm(config.d_model)
            self.mlp = nn.Sequential(nn.Linear(config.d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, config.d_model))

    def forward(self, x: Tensor) -> Tensor:  # [batch, pos, d_model]
        batch, pos, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(batch, pos, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [batch, head, pos, d_head]
        x = x + self.proj(z.transpose(1, 2).reshape(batch, pos, -1))
        if not self.attn_only:
            x = x + self.mlp(self.ln2(x))
        return x


class PlainTransformer(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.d_vocab, config.d_model)
        self.pos_embed = nn.Embedding(config.n_ctx, config.d_model)
        self.blocks = nn.Sequential(*(PlainBlock(config) for _ in range(config.n_layers)))
        self.ln_final = nn.LayerNorm(config.d_model)
        self.unembed = nn.Linear(config.d_model, config.d_vocab, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:  # [batch, pos] -> [batch, pos, d_vocab]
        x = self.embed(tokens) + self.pos_embed(torch.arange(tokens.shape[1], device=tokens.device))
        return self.unembed(self.ln_final(self.blocks(x)))


def direct_loop(model: nn.Module, params: TrainingParams, warmup: int) -> float:
    """Steps per second of a plain training loop (the same batches, optimizer and schedule as train())."""
    config = params.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    generator = torch.Generator().manual_seed(SEED + 1)
    losses = []
    for step in range(1, params.steps + 1):
        if step == warmup + 1:
            start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step - 1, total=params.steps, warmup=params.warmup_steps, peak=params.lr)
        tokens, _ = induction_batch(
            params.data, batch=BATCH, length=config.n_ctx, d_vocab=config.d_vocab, generator=generator
        )
        logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, config.d_vocab), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % params.log_every == 0:
            losses.append(loss.item())
    return (params.steps - warmup) / (time.perf_counter() - start)


# -- the kind's loop -------------------------------------------------------------------------------


def kind_loop(params: TrainingParams, warmup: int) -> float:
    """Steps per second of train(), from the report after step `warmup` to the one after the next-to-last step."""
    reporter = TimedReporter()  # train() reports once per step
    with tempfile.TemporaryDirectory() as folder:
        train(params, RunContext(seed=SEED, device="cpu", artifact_dir=Path(folder), reporter=reporter))
    times = reporter.times  # times[i] follows step i + 1
    last = params.steps - 1  # the last step also saves the checkpoint and runs the final evaluation
    return (last - warmup) / (times[last - 1] - times[warmup - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps of the default model, after the warm-up")
    parser.add_argument("--larger-steps", type=int, default=200, help="timed steps of the larger model")
    add_common_arguments(parser, warmup=50)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()[0]
    rows, ratios, all_rates = [], {}, []
    steps = {"default (kind)": args.steps, "larger": args.larger_steps}
    for size, config in SIZES.items():
        params = TrainingParams(
            model=config, data=InductionTraining(), steps=args.warmup + steps[size], batch_size=BATCH, n_checkpoints=1
        )

        def plain(config: NativeConfig = config, params: TrainingParams = params) -> float:
            torch.manual_seed(SEED)
            return direct_loop(PlainTransformer(config), params, args.warmup)

        def bridge(config: NativeConfig = config, params: TrainingParams = params) -> float:
            return direct_loop(build_native(config, seed=SEED), params, args.warmup)

        def kind(params: TrainingParams = params) -> float:
            return kind_loop(params, args.warmup)

        trainers = {
            "plain PyTorch (reference)": plain,
            "`train()` (LeanTransformer, as the kind runs it)": kind,
            "TransformerBridge trained directly": bridge,
        }
        rates: dict[str, list[float]] = {name: [] for name in trainers}
        for repeat in range(args.repeats):
            order = list(trainers) if repeat % 2 == 0 else list(reversed(trainers))
            for name in order:
                rates[name].append(trainers[name]())
        all_rates += rates.values()
        reference = statistics.median(rates["plain PyTorch (reference)"])
        for name, values in rates.items():
            median = statistics.median(values)
            rows.append(
                f"| {size}: d_model {config.d_model}, n_ctx {config.n_ctx}, d_vocab {config.d_vocab}, {steps[size]} "
                f"steps | {name} | "
                f"{median:.1f} | {min(values):.1f}-{max(values):.1f} | {median / reference:.2f}x |"
            )
            ratios[(size, name)] = median / reference
    load_after = os.getloadavg()[0]

    kind_name = "`train()` (LeanTransformer, as the kind runs it)"
    kind_ratios = {size: ratios[(size, kind_name)] for size in SIZES}
    bridge_ratios = {size: ratios[(size, "TransformerBridge trained directly")] for size in SIZES}
    met = min(kind_ratios.values()) >= GOAL
    lines = [
        f"Attention-only, {SIZES['default (kind)'].n_layers} layers, batch {BATCH}, `induction_training` batches, "
        f"AdamW with warm-up + cosine schedule, on the CPU. Steps per second after "
        f"{args.warmup} warm-up steps, median (and range) of {args.repeats} interleaved trainings, "
        f"{torch.get_num_threads()} torch thread(s), load average {load_before:.1f} before and {load_after:.1f} after.",
        "",
        "| model | trainer | steps/s | range | vs plain PyTorch |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        "**`train()` / plain PyTorch: "
        + ", ".join(f"{ratio:.2f}x ({size})" for size, ratio in kind_ratios.items())
        + f"** (goal: at least {GOAL}x: {'met' if met else 'not met'}). TransformerBridge / plain PyTorch: "
        + ", ".join(f"{ratio:.2f}x ({size})" for size, ratio in bridge_ratios.items())
        + ".",
    ]
    lines += contention_note(max(max(values) / min(values) for values in all_rates), "a trainer's speed")
    write_section("training", "Training speed (`benchmarks/training.py`)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
