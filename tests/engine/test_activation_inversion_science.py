"""activation_inversion must read the input back from layer 0's full residual stream (the token embedding plus the
position), on seeds nobody tuned with, and report the same for a random model of the same configuration.

Layer 0's residual stream is the embedding of the token plus that of its position: with 64 tokens in 64 dimensions
a linear map separates them unless training collapsed the embedding. The later layers are reported, not claimed:
how much of the token survives there is what the kind is for.

Tuned with seed 0 only (1000 decoder steps of 32 sequences, learning rate 0.01, an MLP decoder with 256 hidden
units; seed 0 gave 1.0 at layer 0 for the trained and the random model). TEST_SEEDS were drawn once with
`secrets.randbelow(10**9)` after the first defaults (600 steps, a linear decoder) were fixed; the change to the
present ones was made on seed 0 alone, and docs/science.md records why and what each seed gave under both.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

pytestmark = pytest.mark.slow

TEST_SEEDS = (351634307, 145508733, 267640456, 780311887, 298712175)
PARAMS = {"layers": [0, 2]}  # trains the default 2-layer model here; 2 is the stream after its last block


def _invert(job: tuple[int, str]):
    """Train the default model and its decoders in a worker process (one thread, two side by side on two cores)."""
    from pathlib import Path

    from tests.engine.conftest import LocalRuns

    torch.set_num_threads(1)
    seed, root = job
    _, result, _ = LocalRuns(Path(root) / str(seed)).run("activation_inversion", PARAMS, seed=seed)
    return seed, result


@pytest.fixture(scope="module")
def inverted(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("inversion-science"))
    with ProcessPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(_invert, [(seed, root) for seed in TEST_SEEDS]))


def test_layer_0s_full_residual_stream_gives_the_input_back(inverted, record_property):
    accuracy = {seed: round(result.metrics["accuracy_L0"], 4) for seed, result in inverted.items()}
    for name in ("accuracy_L0", "accuracy_L2", "random_accuracy_L0", "random_accuracy_L2"):  # docs/science.md
        record_property(name, {seed: round(result.metrics[name], 4) for seed, result in inverted.items()})
    assert all(a >= 0.95 for a in accuracy.values()), accuracy


def test_the_random_models_accuracy_is_reported_beside_it(inverted):
    for result in inverted.values():
        assert 0.0 <= result.metrics["random_accuracy_L0"] <= 1.0
        assert 0.0 <= result.metrics["random_accuracy_L2"] <= 1.0
        assert any("randomly initialised" in line for line in result.findings)
