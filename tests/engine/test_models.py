"""Model references: native models, checkpoints of earlier runs, pretrained models from local folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from experiments.engine.errors import ModelNotAvailable
from experiments.engine.models import (
    ModelRef,
    NativeConfig,
    NativeModelRef,
    PretrainedModelRef,
    RunModelRef,
    build_native,
    load_checkpoint,
    load_model,
    pretrained_location,
    read_checkpoint_config,
    save_checkpoint,
)
from experiments.engine.runtime import RunContext

TINY = NativeConfig(n_layers=2, n_heads=2, d_model=16, d_head=8, n_ctx=16, d_vocab=12)
refs = TypeAdapter(ModelRef)


def ctx(tmp_path, resolver=None, seed=0) -> RunContext:
    return RunContext(seed=seed, device="cpu", artifact_dir=tmp_path, artifact_resolver=resolver)


def test_model_references_are_parsed_by_source():
    assert isinstance(refs.validate_python({"source": "native", "config": {"n_layers": 1}}), NativeModelRef)
    assert isinstance(refs.validate_python({"source": "run", "run": 3, "artifact": "checkpoint-100"}), RunModelRef)
    assert isinstance(refs.validate_python({"source": "pretrained", "name": "gpt2"}), PretrainedModelRef)
    for bad in (
        {"source": "hub", "name": "gpt2"},
        {"source": "native", "config": {"n_layers": 1000}},
        {"source": "pretrained", "name": "gpt2; rm -rf /"},
        {"source": "run", "run": 1, "artifact": "../../etc/passwd"},
    ):
        with pytest.raises(ValidationError):
            refs.validate_python(bad)


def test_a_native_model_too_large_is_refused_with_its_size():
    with pytest.raises(ValidationError, match="parameters; the limit is"):
        NativeConfig(n_layers=12, n_heads=32, d_model=1024, d_head=256, d_vocab=65536)


def test_native_models_are_seeded(tmp_path):
    tokens = torch.randint(0, 12, (1, 8))
    a = load_model(NativeModelRef(config=TINY), ctx(tmp_path, seed=1))
    b = load_model(NativeModelRef(config=TINY), ctx(tmp_path, seed=1))
    c = load_model(NativeModelRef(config=TINY), ctx(tmp_path, seed=2))
    assert a.cfg.n_layers == 2 and a.cfg.attn_only
    assert torch.equal(a(tokens), b(tokens))
    assert not torch.equal(a(tokens), c(tokens))


def test_checkpoint_round_trip_gives_the_same_logits(tmp_path):
    model = build_native(TINY, seed=5)
    path = tmp_path / "checkpoint-10.safetensors"
    save_checkpoint(model.state_dict(), TINY, path, meta={"step": 10})
    config, meta = read_checkpoint_config(path)
    assert config == TINY and meta == {"step": 10}
    loaded, _ = load_checkpoint(path)
    tokens = torch.randint(0, 12, (2, 8))
    assert torch.equal(model(tokens), loaded(tokens))


def test_run_reference_loads_through_the_resolver(tmp_path):
    model = build_native(TINY, seed=5)
    save_checkpoint(model.state_dict(), TINY, tmp_path / "ck.safetensors")

    class Resolver:
        def artifact_path(self, run_id: int, name: str) -> Path:
            if (run_id, name) != (4, "checkpoint-10"):
                raise ModelNotAvailable(f"Run {run_id} has no artifact {name!r}.")
            return tmp_path / "ck.safetensors"

    tokens = torch.randint(0, 12, (1, 8))
    loaded = load_model(RunModelRef(run=4, artifact="checkpoint-10"), ctx(tmp_path, Resolver()))
    assert torch.equal(loaded(tokens), model(tokens))
    with pytest.raises(ModelNotAvailable, match="no artifact"):
        load_model(RunModelRef(run=4, artifact="checkpoint-99"), ctx(tmp_path, Resolver()))


@pytest.fixture(autouse=True)
def model_folders_allowed(tmp_path, monkeypatch):
    """Specs may load models by path only from folders the operator lists; here, the test's own."""
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))


@pytest.fixture
def tiny_pretrained(tmp_path) -> Path:
    """A tiny GPT-2 and word-level tokenizer saved the way Hugging Face saves a model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path / "tiny-gpt2"
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=32, vocab_size=30)).save_pretrained(folder)
    vocab = {f"w{i}": i for i in range(28)} | {"<unk>": 28, "<|endoftext|>": 29}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    ).save_pretrained(folder)
    return folder


def test_pretrained_model_loads_offline_from_a_local_folder(tiny_pretrained, tmp_path):
    from transformers import GPT2LMHeadModel

    bridge = load_model(PretrainedModelRef(name=str(tiny_pretrained)), ctx(tmp_path))
    tokens = torch.tensor([[1, 2, 3, 4]])
    reference = GPT2LMHeadModel.from_pretrained(tiny_pretrained, attn_implementation="eager")(tokens).logits
    assert bridge.cfg.n_layers == 1
    assert torch.allclose(bridge(tokens), reference, atol=1e-5)
    _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, 2, 4, 4)


def test_missing_pretrained_model_is_a_clear_error_without_any_download(tmp_path):
    with pytest.raises(ModelNotAvailable, match="not on this machine"):
        load_model(PretrainedModelRef(name="no-such-org/no-such-model"), ctx(tmp_path))
    with pytest.raises(ModelNotAvailable, match="No model folder"):
        load_model(PretrainedModelRef(name=str(tmp_path / "absent")), ctx(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match=r"no config\.json"):
        load_model(PretrainedModelRef(name=str(tmp_path / "empty")), ctx(tmp_path))


@pytest.mark.parametrize("name", ["/etc", "/tmp/../etc", "/root/.ssh", "./models/../../etc"])
def test_a_spec_cannot_load_a_model_from_outside_the_listed_folders(tmp_path, name):
    with pytest.raises(ModelNotAvailable, match="PRETRAINED_MODEL_DIRS"):
        load_model(PretrainedModelRef(name=name), ctx(tmp_path))


OUTSIDE_THE_MODEL_FOLDERS = [
    "/etc",
    "../../etc",
    "/proc/self",
    "models/../../etc",
    "org/../..",
    "~",
    ".",
    "gpt2\x00",
    "/models\n/etc",
    "org/name/extra",  # neither a folder path nor a Hugging Face name
    "org--name",
]


@pytest.mark.parametrize("name", OUTSIDE_THE_MODEL_FOLDERS)
def test_pretrained_location_refuses_names_outside_the_folders(tmp_path, name):
    with pytest.raises(ModelNotAvailable, match=r"PRETRAINED_MODEL_DIRS|control character"):
        pretrained_location(name, [tmp_path])


def test_pretrained_location_allows_folders_under_the_roots_and_hugging_face_names(tmp_path):
    assert pretrained_location(str(tmp_path / "tiny-gpt2"), [tmp_path]) == tmp_path / "tiny-gpt2"
    assert pretrained_location(str(tmp_path), [tmp_path]) == tmp_path
    assert pretrained_location(str(tmp_path / "a" / ".." / "b"), [tmp_path]) == tmp_path / "b"
    for name in ("gpt2", "EleutherAI/pythia-14m", "org/name.v2"):
        assert pretrained_location(name, [tmp_path]) is None  # looked up in the local cache


def test_the_loader_applies_the_same_rule(tmp_path):
    """No name pretrained_location refuses gets as far as the disk or the cache on the worker."""
    with pytest.raises(ModelNotAvailable, match="neither a Hugging Face model name"):
        load_model(PretrainedModelRef(name="org/name/extra"), ctx(tmp_path))
