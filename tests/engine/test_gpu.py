"""On a GPU worker, the kinds compute on CUDA what they compute on the CPU.

A GPU worker runs every kind that prefers a GPU (`DEVICE = "gpu"`) on `cuda`,
while the rest of the suite runs on the CPU. These tests run the same seeded
work on both devices in one process and compare: the batched head ablation
against the one-head-at-a-time hook loop, analysis kinds on a seeded native
model (same weights on both devices: TransformerLens builds them on the CPU),
and a short training run. Float32 kernels differ between devices in their last
bits, so numbers agree within a tolerance; findings agree in their words and in
their figures as printed.

They need CUDA and skip without it, saying so; `scripts/gpu_check.sh` runs them
(`pytest -m gpu`) with the GPU ablation benchmark on a machine that has one.
"""

from __future__ import annotations

import re

import pytest
import torch

from experiments.engine.analysis.ablation import batched_ablation, per_head_loop
from experiments.engine.datasets import RepeatedRandomTokens, repeated_random_tokens
from experiments.engine.lean import lean_from_bridge
from experiments.engine.models import NativeConfig, build_native
from experiments.engine.registry import registry
from experiments.engine.runtime import resolve_device
from tests.engine.conftest import LocalRuns

GPU = "cuda"
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs CUDA (torch.cuda.is_available() is False): run scripts/gpu_check.sh on a GPU worker",
    ),
]

ATOL = 1e-4  # float32 on two devices: last-bit differences, summed over a few layers
CONFIGS = {
    "attention-only": NativeConfig(n_layers=3, n_heads=4, d_model=64, d_head=16, n_ctx=64, d_vocab=100, attn_only=True),
    "with MLPs": NativeConfig(
        n_layers=3, n_heads=4, d_model=64, d_head=16, n_ctx=64, d_vocab=100, attn_only=False, d_mlp=128
    ),
}
NATIVE_MODEL = {"source": "native", "config": {"n_layers": 2, "n_heads": 4, "d_model": 64, "d_head": 16}}
TINY_TRAINING = {"steps": 40, "batch_size": 8, "warmup_steps": 5, "n_checkpoints": 2, "eval_every": 20}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def tokens_for(config: NativeConfig) -> torch.Tensor:
    ref = RepeatedRandomTokens(n_sequences=8, half_length=(config.n_ctx - 1) // 2, seed=0)
    return repeated_random_tokens(ref, d_vocab=config.d_vocab)


def assert_same_findings(on_gpu: list[str], on_cpu: list[str], *, printed_to: float) -> None:
    """The same sentences; each figure equal up to a flip of its last printed digit."""
    assert len(on_gpu) == len(on_cpu), (on_gpu, on_cpu)
    for gpu_text, cpu_text in zip(on_gpu, on_cpu, strict=True):
        assert NUMBER.sub("#", gpu_text) == NUMBER.sub("#", cpu_text), (gpu_text, cpu_text)
        for gpu_number, cpu_number in zip(NUMBER.findall(gpu_text), NUMBER.findall(cpu_text), strict=True):
            assert float(gpu_number) == pytest.approx(float(cpu_number), abs=printed_to), (gpu_text, cpu_text)


def assert_same_metrics(on_gpu: dict, on_cpu: dict, *, rel: float, abs: float) -> None:
    assert on_gpu.keys() == on_cpu.keys()
    for name, value in on_cpu.items():
        if value is None:
            assert on_gpu[name] is None, name
        else:
            assert on_gpu[name] == pytest.approx(value, rel=rel, abs=abs), name


def test_kinds_that_prefer_a_gpu_run_on_cuda_on_this_worker():
    """The CUDA build of torch is installed: a GPU kind here runs on the GPU, not silently on the CPU."""
    assert resolve_device(registry.get("head_ablation").device).type == "cuda"
    assert resolve_device(registry.get("train_transformer").device).type == "cuda"


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_batched_ablation_on_cuda_equals_the_hook_loop_and_the_cpu(name, mode):
    config = CONFIGS[name]
    tokens = tokens_for(config)
    cpu_clean, cpu_ablated = per_head_loop(build_native(config, seed=2).eval(), tokens, mode=mode)

    bridge = build_native(config, seed=2, device=GPU).eval()
    gpu_tokens = tokens.to(GPU)
    loop_clean, loop_ablated = per_head_loop(bridge, gpu_tokens, mode=mode)
    lean = lean_from_bridge(bridge, config).to(GPU).eval()
    for max_variants in (1, 64):
        clean, ablated = batched_ablation(lean, gpu_tokens, mode=mode, max_variants=max_variants)
        assert clean == pytest.approx(loop_clean, abs=ATOL)
        assert torch.allclose(ablated, loop_ablated, atol=ATOL)
    assert loop_clean == pytest.approx(cpu_clean, abs=ATOL)
    assert torch.allclose(loop_ablated, cpu_ablated, atol=ATOL)
    assert (cpu_ablated - cpu_clean).abs().min() > 0  # every head matters a little: not a comparison of constants


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, LocalRuns]:
    return {device: LocalRuns(tmp_path_factory.mktemp(device), device=device) for device in ("cpu", GPU)}


@pytest.mark.parametrize("key", ["head_detection", "head_ablation", "composition_scores"])
def test_an_analysis_kind_finds_on_cuda_what_it_finds_on_the_cpu(runs, key):
    on_cpu = runs["cpu"].run(key, {"model": NATIVE_MODEL}, seed=3)[1]
    on_gpu, ctx = runs[GPU].run(key, {"model": NATIVE_MODEL}, seed=3)[1:]
    assert_same_metrics(on_gpu.metrics, on_cpu.metrics, rel=1e-4, abs=1e-4)
    assert_same_findings(on_gpu.findings, on_cpu.findings, printed_to=0.011)
    assert on_gpu.headline == on_cpu.headline and on_gpu.headline in ctx.artifacts


def test_a_short_training_run_on_cuda_follows_the_cpus_loss(runs):
    """40 steps of the same seeded model and batches: the losses stay within a percent of each other."""
    on_cpu = runs["cpu"].run("train_transformer", TINY_TRAINING, seed=1)[1]
    on_gpu = runs[GPU].run("train_transformer", TINY_TRAINING, seed=1)[1]
    assert on_gpu.metrics["n_checkpoints"] == on_cpu.metrics["n_checkpoints"] == 2
    for name in ("final_loss", "repeated_first_half_loss", "repeated_second_half_loss"):
        assert on_gpu.metrics[name] == pytest.approx(on_cpu.metrics[name], rel=1e-2), name
    assert on_gpu.findings[0] == on_cpu.findings[0]  # what was trained, for how long, on what
