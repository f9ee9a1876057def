"""Science: a small transformer trained on IOI prompts does IOI on names it never saw in a prompt; patching finds the
head that carries it; mean-ablating the top 3 heads by patching effect costs more than ablating any 3 other heads.

The model and its training are the `ioi` kind's defaults (`IOI_TRAINING`: 3 layers x 4 heads, d_model 64,
attention only, 3000 steps of batch 64 on the names of `ioi_prompts` with repeated roll calls). Tuned on seeds 1-4
(docs/science.md, "IOI"); the test seeds were drawn with `secrets.randbelow(10**9)` after the recipe and the claims
below were fixed. (An earlier draw, 847937957 and 188658453, tested the same recipe at 2000 steps: the second seed
never left the loss plateau, so the recipe went to 3000 steps, checked on tuning seeds 3 and 4, and the seeds
were drawn again.)

What the issue expected and what held on the tuning seeds: the issue expected the most important heads in the
last layer, attending from END to IO (name movers, as in GPT-2). In the models trained here the head that carries
the task attends from END to the repeated name S (its second mention, S2) and writes against S directly (positive
direct logit attribution on IO − S): it suppresses S rather than moving IO, and it sat in the last layer on seed 1
but in the middle layer on seeds 2-4. The test asserts that picture, and the comparison against "any 3 other heads"
reads "other" as heads outside the top 3 (triples that share the dominant head all cost nearly everything).
"""

from __future__ import annotations

import pytest
import torch

from experiments.engine.analysis.ioi import all_head_sets, analyse_ioi, mean_ablated_logit_diffs
from experiments.engine.ioi import IOIPrompts, ioi_batch
from experiments.engine.kinds.ioi import IOI_TRAINING
from experiments.engine.lean import to_bridge
from experiments.engine.runtime import MemoryReporter, RunContext
from experiments.engine.training import train

pytestmark = pytest.mark.slow

TEST_SEEDS = [483652305, 914932116, 289956932]


@pytest.fixture(scope="module", params=TEST_SEEDS)
def trained(request, tmp_path_factory):
    torch.set_num_threads(1)
    seed = request.param
    ctx = RunContext(
        seed=seed, device="cpu", artifact_dir=tmp_path_factory.mktemp(f"ioi-{seed}"), reporter=MemoryReporter()
    )
    model = to_bridge(train(IOI_TRAINING, ctx).model).eval()
    batch = ioi_batch(IOIPrompts(n_prompts=256, names="held_out", seed=seed), model)
    return model, batch, analyse_ioi(model, batch)


def test_a_small_model_trained_on_ioi_prompts_names_the_indirect_object_of_held_out_names(trained):
    _, _, analysis = trained
    assert analysis.logit_diff >= 2.0, analysis.summary()
    assert abs(analysis.corrupt_logit_diff) < analysis.logit_diff / 2  # ABC prompts have no answer


def test_patching_finds_the_head_that_reads_the_repeated_name_from_end_and_writes_against_it(trained):
    _, _, analysis = trained
    layer, head = analysis.top_heads(1)[0]
    assert layer >= 1  # it needs an earlier layer to tell the repeated name from the other
    assert analysis.patching[layer, head] < 0
    assert analysis.attn_s[layer, head] >= 0.5 and analysis.attn_s[layer, head] > analysis.attn_io[layer, head]
    assert analysis.dla[layer, head] > 0


def test_mean_ablating_the_top_three_heads_costs_more_than_ablating_any_three_other_heads(trained):
    model, batch, analysis = trained
    top = sorted(analysis.top_heads(3))
    others = [heads for heads in all_head_sets(analysis.n_layers, analysis.n_heads, 3) if not set(heads) & set(top)]
    costs = analysis.logit_diff - mean_ablated_logit_diffs(model, batch, [top, *others])
    assert costs[0] > costs[1:].max(), (float(costs[0]), others[int(costs[1:].argmax())], float(costs[1:].max()))
