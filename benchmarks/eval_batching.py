"""Answer-option scoring: `LanguageModel.option_logprobs` in padded batches of 32 beside one prompt at a time.

Both score the same prompts on the same randomly initialised GPT-2-architecture model, saved to a temporary
folder with a word-level tokenizer and loaded the way a run loads a pretrained model (`load_language_model`).
The prompts are the behavioural kinds' default framings filled with items of varied length (persona
truthfulness statements, conformity actions, refusal requests). The batched path right-pads each batch with an
attention mask and reads each row at its last real token; the two must give the same log-probabilities.

    python benchmarks/eval_batching.py [--repeats 3] [--threads 1] [--prompts 256]

Batch sizes are interleaved within each repeat (alternating which goes first) so that load from other
processes hits them alike; medians are reported. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.report import contention_note, write_section  # noqa: E402
from experiments.engine.evals import prompts as p  # noqa: E402
from experiments.engine.evals.prompts import Prompt  # noqa: E402
from experiments.engine.evals.scoring import load_language_model  # noqa: E402
from experiments.engine.models import PRETRAINED_DIRS_ENV, PretrainedModelRef  # noqa: E402
from tests.engine.tiny_models import save_tiny_pretrained  # noqa: E402

N_POSITIONS = 256
# (layers, d_model, heads): the synthetic-dialogue models' size, and a larger one
SIZES = {"small": (2, 64, 4), "larger": (4, 256, 4)}
FILLER_WORDS = 1000  # extra vocabulary, so the unembedding is of a realistic small-model size
BATCH_SIZES = (32, 1)
GOAL_RATIO = 5.0
GOAL_DIFF = 1e-4

SUBJECTS = ["the sky", "water", "a cat", "the sun", "ice", "a tree", "the moon", "sand", "fire", "a river"]
PROPERTIES = ["blue", "dry", "hot", "cold", "green", "wet", "bright", "old", "small", "large"]
ACTIONS = ["lie to a friend", "take the last cake", "skip a meeting", "borrow a book without asking", "shout"]
REQUESTS = ["how do i bake bread", "tell me how to pick a lock", "write a poem about the sea", "help me cheat"]


def benchmark_prompts(n: int, seed: int = 0) -> list[Prompt]:
    """`n` prompts of the three kinds' default framings, with items from one to twelve clauses long."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        clauses = " ".join(f"{rng.choice(SUBJECTS)} is {rng.choice(PROPERTIES)}." for _ in range(rng.randint(1, 12)))
        if i % 3 == 0:
            persona = rng.choice([p.BASELINE_PERSONA, p.FRIENDLY_PERSONA])
            user = p.STATEMENT_USER.format(statement=clauses)
            out.append(Prompt(p.PERSONA_SYSTEM.format(persona=persona), user, p.STATEMENT_ANSWER_PREFIX))
        elif i % 3 == 1:
            template = rng.choice([p.AFFIRMATIVE_USER, p.DISCONFIRMING_USER])
            user = f"{clauses} {template.format(action=rng.choice(ACTIONS))}"
            out.append(Prompt(p.CONFORMITY_SYSTEM, user, p.CONFORMITY_ANSWER_PREFIX))
        else:
            out.append(Prompt(p.REFUSAL_SYSTEM, f"{clauses} {rng.choice(REQUESTS)}?"))
    return out


def measure(size: str, n_layer: int, n_embd: int, n_head: int, prompts: list[Prompt], args) -> tuple[list[str], float]:
    """Time both batch sizes on one model size; its table rows and the worst spread of a batch size's times."""
    texts = [f"{q.system} {q.user} {q.answer_prefix}" for q in prompts]
    texts += [" ".join(f"w{i}" for i in range(FILLER_WORDS)), p.TRUE_OPTION, p.AGREE_OPTION, p.DISAGREE_OPTION]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_pretrained(
            Path(tmp) / "gpt2-eval-bench", extra_texts=texts, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
            n_positions=N_POSITIONS,
        )  # fmt: skip
        os.environ[PRETRAINED_DIRS_ENV] = tmp
        ctx = SimpleNamespace(device=torch.device(args.device), artifact_resolver=None, seed=0)
        model = load_language_model(PretrainedModelRef(name=str(folder)), ctx)

    ids = [model.prompt_ids(q) for q in prompts]
    options = [model.option_id(text, field="option") for text in (p.TRUE_OPTION, p.FALSE_OPTION)]

    def score(batch_size: int) -> np.ndarray:
        return model.option_logprobs(ids, options, batch_size=batch_size)

    results = {b: score(b) for b in BATCH_SIZES}  # warm-up, and the values compared
    times: dict[int, list[float]] = {b: [] for b in BATCH_SIZES}
    for repeat in range(args.repeats):
        for b in BATCH_SIZES if repeat % 2 == 0 else tuple(reversed(BATCH_SIZES)):
            start = time.perf_counter()
            score(b)
            times[b].append(time.perf_counter() - start)
    diff = float(np.abs(results[32] - results[1]).max())
    rate = {b: len(ids) / statistics.median(times[b]) for b in BATCH_SIZES}
    ratio = rate[32] / rate[1]
    n_params = sum(t.numel() for t in model._hf.parameters())
    label = f"{size}: {n_layer} layers, d_model {n_embd}, {n_params / 1e6:.1f}M parameters"
    rows = [
        f"| {label} | {b} | {rate[b]:.1f} | {len(ids) / max(times[b]):.1f}-{len(ids) / min(times[b]):.1f} | "
        f"{1000 / rate[b]:.1f} | {rate[b] / rate[1]:.2f}x |"
        for b in BATCH_SIZES
    ]
    verdict = "met" if ratio >= GOAL_RATIO and diff <= GOAL_DIFF else "not met"
    summary = (
        f"**{size}: batches of 32 / one prompt at a time {ratio:.2f}x; max abs difference of the log-probabilities "
        f"{diff:.1e}** (goal: at least {GOAL_RATIO:.0f}x, equal to {GOAL_DIFF:.0e}: {verdict})."
    )
    return [*rows, "", summary], max(max(t) / min(t) for t in times.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each batch size, after a warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--prompts", type=int, default=256, help="prompts scored per repeat")
    parser.add_argument("--device", default="cpu", help="torch device to score on (cpu, cuda)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    prompts = benchmark_prompts(args.prompts)
    load_before = os.getloadavg()[0]
    tables, spreads = [], []
    for size, (n_layer, n_embd, n_head) in SIZES.items():
        lines, spread = measure(size, n_layer, n_embd, n_head, prompts, args)
        tables.append(lines)
        spreads.append(spread)
    load_after = os.getloadavg()[0]
    header = [
        f"Models: GPT-2 architecture, random init (seed 0), a word vocabulary of the prompts' words and "
        f"{FILLER_WORDS:,} filler words, loaded "
        f"with `load_language_model` from a local folder, at two sizes: the size of the synthetic-dialogue models "
        f"the CPU tests evaluate, and a larger one. Data: {len(prompts)} prompts of the three behavioural kinds' "
        f"default framings (24-85 tokens), two answer options. Items per second of `option_logprobs`, median (and "
        f"range) of {args.repeats} interleaved repeats after a warm-up, device {args.device}, "
        f"{torch.get_num_threads()} torch thread(s), load average {load_before:.1f} before and {load_after:.1f} after.",
        "",
        "| model | batch size | items/s | range | ms per item | vs batch size 1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    body = header + [row for table in tables for row in table[:-2]] + [""] + [table[-1] for table in tables]
    if args.device == "cpu":
        body += [
            "",
            "On one CPU thread a small model's prompt costs little arithmetic, so the per-call overhead a batch "
            "shares dominates and batching pays; at the larger size one prompt alone already keeps the thread "
            "busy with arithmetic, a batch saves only the overhead, and the ratio falls far below the goal, which "
            "holds there only on an accelerator (run with `--device cuda`).",
        ]
    body += contention_note(max(spreads), "a batch size's time")
    text = "\n".join(body)
    write_section("eval_batching", "Answer-option scoring in batches (`benchmarks/eval_batching.py`)", text)
    print(text)


if __name__ == "__main__":
    main()
