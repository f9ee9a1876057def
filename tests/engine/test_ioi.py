"""The ioi kind: on a train_transformer checkpoint, trained inside the run, and its checks before queueing."""

from __future__ import annotations

import json

import pytest

from experiments.engine.kinds import ioi
from experiments.engine.kinds.ioi import Params, check_references, findings
from tests.engine.test_models import model_folders_allowed  # noqa: F401  (fixture)

TINY = {"n_layers": 2, "n_heads": 2, "d_model": 32, "d_head": 8}
TINY_TRAINING = {
    "model": TINY, "data": {"source": "ioi_prompts", "train_on": "names"}, "steps": 30, "batch_size": 8,
    "warmup_steps": 5, "n_checkpoints": 1, "eval_every": 30,
}  # fmt: skip
DATA = {"source": "ioi_prompts", "n_prompts": 16}


@pytest.fixture(scope="module")
def checkpoint(local_runs):
    run_id, _, _ = local_runs.run("train_transformer", TINY_TRAINING)
    return {"source": "run", "run": run_id, "artifact": "checkpoint-30"}


def read(ctx, name):
    return json.loads((ctx.artifact_dir / ctx.artifacts[name].path).read_text())


def test_ioi_on_a_checkpoint_reports_performance_attribution_patching_and_roles(local_runs, checkpoint):
    _, result, ctx = local_runs.run("ioi", {"model": checkpoint, "data": DATA, "top_k": 3})
    assert set(ioi.METRICS) == set(result.metrics)
    assert 0 <= result.metrics["accuracy"] <= 1 and 0 <= result.metrics["top_k_last_layer_fraction"] <= 1
    assert result.headline == "circuit" and {"circuit", "attribution", "end_attention", "roles", "role_table"} <= set(
        ctx.artifacts
    )
    heads = read(ctx, "roles")["heads"]
    assert len(heads) == 4 and [row["rank"] for row in heads] == [1, 2, 3, 4]
    assert abs(heads[0]["patching"]) >= abs(heads[-1]["patching"])
    circuit = read(ctx, "circuit")
    labels = [t.get("text") for t in circuit["data"] if t.get("mode") == "markers+text"]
    assert any(label == ["logits (IO − S)"] for label in labels)
    assert len(result.summary["top_heads"]) == 3 and len(result.summary["examples"]) == 3
    assert result.findings[0].startswith("The model's mean logit difference IO − S is")


def test_ioi_without_a_model_trains_one_on_ioi_prompts_first(local_runs):
    _, result, ctx = local_runs.run("ioi", {"training": TINY_TRAINING, "data": DATA, "top_k": 2})
    assert ctx.reporter.parts[0]["key"] == "training"
    assert "ioi_logit_difference" in ctx.reporter.parts[0]["metrics"]
    assert {"training_final_loss", "training_ioi_logit_difference", "logit_diff"} <= set(result.metrics)


def test_a_model_too_small_for_the_word_vocabulary_is_refused_before_queueing(local_runs):
    run_id, _, _ = local_runs.run(
        "train_transformer", {"model": {**TINY, "d_vocab": 64, "n_ctx": 32}, "steps": 2, "n_checkpoints": 1}
    )
    problems = check_references(Params(model={"source": "run", "run": run_id, "artifact": "checkpoint-2"}), local_runs)
    assert list(problems) == ["model"] and "at least 229" in problems["model"]
    wrong = Params(training={"data": {"source": "induction_training"}})
    assert list(check_references(wrong, local_runs)) == ["training.data"]
    assert check_references(Params(), local_runs) == {}


def test_findings_name_the_top_head_and_its_attention():
    import torch

    from experiments.engine.analysis.ioi import IOIAnalysis

    analysis = IOIAnalysis(
        n_layers=2, n_heads=2, logit_diff=3.0, accuracy=0.95, corrupt_logit_diff=0.1,
        dla=torch.tensor([[0.0, 0.1], [2.0, 0.0]]), patching=torch.tensor([[0.0, -0.2], [-1.5, 0.0]]),
        attn_io=torch.tensor([[0.1, 0.1], [0.8, 0.1]]), attn_s=torch.tensor([[0.1, 0.6], [0.1, 0.1]]),
        roles={"name_mover": [(1, 0)], "negative_name_mover": [], "s_inhibition": [(0, 1)], "induction": [],
               "duplicate_token": [], "previous_token": []},
    )  # fmt: skip
    top = analysis.top_heads(2)
    metrics = ioi._metrics(analysis, top, ablated=0.5)
    lines = findings(analysis, top, metrics)
    assert "3.00 on the clean prompts (IO above S on 95%) and 0.10 on the ABC prompts" in lines[0]
    assert "L1H0 (layer 1 of 2)" in lines[1] and "mostly at IO (0.80 to IO" in lines[1]
    assert "costs 2.50" in lines[2] and metrics["top_k_last_layer_fraction"] == 0.5
    assert lines[3] == "Role candidates: name movers: L1H0; S-inhibition heads: L0H1."


# -- a pretrained model from a local folder (the GPU-worker path, with a tiny random GPT-2) -----------------------


def tiny_gpt2_with_names(folder, names: tuple[str, ...]):
    """A tiny random 2-layer GPT-2 whose word-level tokenizer writes `names` (and nothing else of the prompts
    but punctuation) as one token each; every other word is its unknown token."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["<unk>", "<|endoftext|>", ",", ".", "to", *names]
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=40, vocab_size=len(words))
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    ).save_pretrained(folder)
    return {"source": "pretrained", "name": str(folder)}


@pytest.mark.usefixtures("model_folders_allowed")
def test_ioi_on_a_pretrained_model_uses_its_tokenizer_and_only_its_one_token_names(local_runs, tmp_path):
    from experiments.engine.ioi import HELD_OUT_NAMES

    ref = tiny_gpt2_with_names(tmp_path / "gpt2-names", HELD_OUT_NAMES[:4])
    assert check_references(Params(model=ref), local_runs) == {}
    _, result, ctx = local_runs.run("ioi", {"model": ref, "data": DATA, "top_k": 3})
    assert len(read(ctx, "roles")["heads"]) == 4  # 2 layers x 2 heads
    assert all(any(name in text for name in HELD_OUT_NAMES[:4]) for text in result.summary["examples"])
    assert -50 < result.metrics["logit_diff"] < 50


@pytest.mark.usefixtures("model_folders_allowed")
def test_a_pretrained_tokenizer_with_fewer_than_three_one_token_names_is_refused(tmp_path):
    from experiments.engine.ioi import HELD_OUT_NAMES, TRAIN_NAMES

    ref = tiny_gpt2_with_names(tmp_path / "gpt2-two-names", (*HELD_OUT_NAMES[:2], *TRAIN_NAMES[:5]))
    problems = check_references(Params(model=ref), runs=None)
    assert list(problems) == ["model"]
    assert "writes only 2 of the 24 names data.names selects ('held_out') as one token" in problems["model"]
    assert check_references(Params(model=ref, data={"names": "all"}), runs=None) == {}


def test_repeated_roll_calls_say_a_list_of_distinct_names_again_in_the_same_order():
    import torch

    from experiments.engine.ioi import IOIPrompts, ioi_training_batch

    ref = IOIPrompts(roll_call_fraction=0.5, roll_call_order="repeated")
    tokens, _, _ = ioi_training_batch(ref, batch=16, length=32, d_vocab=256, generator=torch.Generator().manual_seed(0))
    for row in tokens[8:]:
        called = row[1::2].tolist()
        size = next(k for k in range(2, 6) if called[k:] == called[:-k])
        assert len(set(called[:size])) == size


def test_findings_say_when_the_top_head_suppresses_s_instead_of_moving_io():
    import torch

    from experiments.engine.analysis.ioi import ROLES, IOIAnalysis

    analysis = IOIAnalysis(
        n_layers=2, n_heads=1, logit_diff=5.0, accuracy=1.0, corrupt_logit_diff=0.0,
        dla=torch.tensor([[0.1], [3.0]]), patching=torch.tensor([[-0.5], [-4.0]]),
        attn_io=torch.tensor([[0.3], [0.0]]), attn_s=torch.tensor([[0.3], [0.95]]), roles={r: [] for r in ROLES},
    )  # fmt: skip
    top = analysis.top_heads(1)
    lines = findings(analysis, top, ioi._metrics(analysis, top, ablated=1.0))
    assert lines[1].endswith("It reads the repeated name and pushes it down: it suppresses S rather than moving IO.")
    assert lines[-1] == "No head meets any role rule."


def test_head_detection_names_the_ioi_roles_when_given_ioi_prompts(local_runs, checkpoint):
    from experiments.engine.analysis.ioi import ROLES

    params = {"model": checkpoint, "data": {"n_sequences": 4, "half_length": 10}, "ioi": DATA}
    result = local_runs.run("head_detection", params)[1]
    assert {f"n_ioi_{role}_heads" for role in ROLES} <= set(result.metrics)
    assert set(result.summary["ioi_roles"]) == set(ROLES)
    assert all(isinstance(row["ioi_roles"], list) for row in result.summary["heads"])
    assert result.findings[-1].startswith("On IOI prompts (logit difference")


def test_head_detection_refuses_ioi_prompts_a_model_cannot_read(local_runs):
    from experiments.engine.kinds.head_detection import Params as HeadParams
    from experiments.engine.kinds.head_detection import check_references as check_heads

    small = {"source": "native", "config": {"d_vocab": 64, "n_ctx": 64, "d_model": 16, "n_heads": 2, "d_head": 8}}
    params = HeadParams.model_validate({"model": small, "ioi": DATA})
    assert "vocabulary of 64" in check_heads(params, local_runs)["ioi"]
    assert check_heads(HeadParams.model_validate({"model": small}), local_runs) == {}
