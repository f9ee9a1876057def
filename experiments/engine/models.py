"""Model references: how a spec names the model it wants, and how the engine loads it.

Three sources (DESIGN.md, "Experiment kinds"):

- `{"source": "native", "config": {...}}`: a small TransformerLens-native model
  built with `TransformerBridge.boot_native`, randomly initialised from the run's seed.
- `{"source": "run", "run": 12, "artifact": "checkpoint-2000"}`: a checkpoint
  an earlier run saved (see `save_checkpoint`), found through the context's
  artifact resolver.
- `{"source": "pretrained", "name": "gpt2"}`: a Hugging Face model from a local
  directory or the local Hugging Face cache, loaded offline with
  `TransformerBridge.boot_transformers`. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import torch
from pydantic import Field, model_validator

from experiments.engine.errors import ModelNotAvailable
from experiments.engine.params import KindParams
from experiments.engine.types import RecordId

CHECKPOINT_FORMAT = "ideas-native-checkpoint/1"
MAX_NATIVE_PARAMETERS = 60_000_000  # the largest native model any kind may build


class NativeConfig(KindParams):
    """The bounded subset of TransformerBridgeConfig a spec may set."""

    n_layers: int = Field(2, ge=1, le=12)
    n_heads: int = Field(8, ge=1, le=32)
    d_model: int = Field(256, ge=8, le=1024)
    d_head: int = Field(32, ge=4, le=256)
    d_mlp: int | None = Field(None, ge=8, le=4096, description="Ignored for attention-only models.")
    n_ctx: int = Field(256, ge=4, le=2048)
    d_vocab: int = Field(1024, ge=4, le=65536)
    attn_only: bool = True
    act_fn: Literal["gelu", "gelu_new", "relu", "silu"] = "gelu"
    normalization_type: Literal["LN", "LNPre", "RMS"] | None = "LN"
    positional_embedding_type: Literal["standard", "rotary"] = "standard"

    @model_validator(mode="after")
    def _fits(self) -> NativeConfig:
        if self.n_parameters() > MAX_NATIVE_PARAMETERS:
            raise ValueError(
                f"this model has about {self.n_parameters():,} parameters; the limit is {MAX_NATIVE_PARAMETERS:,}"
            )
        return self

    def n_parameters(self) -> int:
        """Approximate parameter count (embeddings, attention, MLPs, unembedding)."""
        attn = 4 * self.n_layers * self.n_heads * self.d_head * self.d_model
        mlp = 0 if self.attn_only else 2 * self.n_layers * self.d_model * (self.d_mlp or 4 * self.d_model)
        embed = 2 * self.d_vocab * self.d_model + self.n_ctx * self.d_model
        return attn + mlp + embed

    def bridge_config(self, seed: int) -> Any:
        from transformer_lens.config import TransformerBridgeConfig

        values = self.model_dump()
        if self.attn_only:
            values.pop("d_mlp")
        elif values["d_mlp"] is None:
            values["d_mlp"] = 4 * self.d_model
        return TransformerBridgeConfig(**values, seed=seed)


class NativeModelRef(KindParams):
    source: Literal["native"] = "native"
    config: NativeConfig = NativeConfig()


class RunModelRef(KindParams):
    source: Literal["run"] = "run"
    run: RecordId = Field(description="The id of the run that saved the checkpoint.")
    artifact: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="The checkpoint's name.")


class PretrainedModelRef(KindParams):
    source: Literal["pretrained"] = "pretrained"
    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_./-]+$",
        description="A local directory with a Hugging Face model, or a model name already in the local cache.",
    )


ModelRef = Annotated[NativeModelRef | RunModelRef | PretrainedModelRef, Field(discriminator="source")]


class ArtifactResolver(Protocol):
    """Finds another run's artifact files; the platform implements it over its database.

    Both raise ModelNotAvailable with a message for the user when the run has not succeeded or lacks them.
    """

    def artifact_path(self, run_id: int, name: str) -> Path: ...

    def checkpoints(self, run_id: int) -> list[tuple[int, str]]:
        """(step, artifact name) of every checkpoint the run saved, by step."""
        ...


def _import_native_source() -> Any:
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (attaches boot_native)
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge


def build_native(config: NativeConfig, *, seed: int, device: torch.device | str = "cpu") -> Any:
    """A fresh, seeded TL-native model."""
    bridge = _import_native_source()
    return bridge.boot_native(config.bridge_config(seed), device=device)


def save_checkpoint(
    state: dict[str, torch.Tensor], config: NativeConfig, path: Path, *, meta: dict[str, Any] | None = None
) -> None:
    """Write a native model's config and weights (the bridge's state-dict layout) as one safetensors file."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    metadata = {"format": CHECKPOINT_FORMAT, "config": config.model_dump_json(), "meta": json.dumps(meta or {})}
    save_file(state, str(path), metadata=metadata)


def read_checkpoint_config(path: Path) -> tuple[NativeConfig, dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except SafetensorError as exc:
        raise ModelNotAvailable(f"{path.name} is not a readable model checkpoint: {exc}") from None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise ModelNotAvailable(f"{path.name} is not a model checkpoint (format {metadata.get('format')!r}).")
    return NativeConfig.model_validate_json(metadata["config"]), json.loads(metadata.get("meta", "{}"))


def load_checkpoint(path: Path, *, device: torch.device | str = "cpu") -> tuple[Any, NativeConfig]:
    from safetensors.torch import load_file

    config, _ = read_checkpoint_config(path)
    model = build_native(config, seed=0, device=device)
    model.load_state_dict(load_file(str(path), device=str(device)))
    return model, config


PRETRAINED_DIRS_ENV = "PRETRAINED_MODEL_DIRS"


def pretrained_roots() -> list[Path]:
    """Folders a spec may load models from by path (PRETRAINED_MODEL_DIRS, separated like PATH)."""
    raw = os.environ.get(PRETRAINED_DIRS_ENV, "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def pretrained_location(name: str, roots: Sequence[Path]) -> Path | None:
    """Where a pretrained reference points: a folder under one of `roots` for a path, None for a model name
    to look up in the local Hugging Face cache ("gpt2", "org/name"). Anything else is ModelNotAvailable.

    Specs come from users, so a path must lie under a folder the operator listed: a spec cannot make a
    worker open an arbitrary directory. The one rule for both ends: the spec check when a spec is written
    and the loader on the worker call this, with the same roots (`pretrained_roots()`).
    """
    if any(char in name for char in "\0\r\n"):
        raise ModelNotAvailable(f"{name!r} is not a model name or folder: it holds a control character.")
    if name.startswith(("/", ".", "~")) or "/../" in f"/{name}/":
        candidate = Path(name).expanduser().resolve()
        if not any(candidate == root or root in candidate.parents for root in roots):
            listed = os.pathsep.join(str(r) for r in roots) or "nothing"
            raise ModelNotAvailable(
                f"Model folders must lie under {PRETRAINED_DIRS_ENV} (now: {listed}); {name!r} does not."
            )
        return candidate
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)  # what the cache lookup itself requires of a name
    except HFValidationError:
        raise ModelNotAvailable(
            f"{name!r} is neither a Hugging Face model name like 'gpt2' or 'org/name' nor a path to a folder "
            f"under {PRETRAINED_DIRS_ENV}."
        ) from None
    return None


def resolve_pretrained_dir(name: str) -> Path:
    """The local folder holding `name`: a folder under PRETRAINED_MODEL_DIRS, or its snapshot in the HF cache."""
    candidate = pretrained_location(name, pretrained_roots())
    if candidate is not None:
        if not candidate.is_dir():
            raise ModelNotAvailable(f"No model folder at {candidate}.")
        if not (candidate / "config.json").is_file():
            raise ModelNotAvailable(f"{candidate} has no config.json: it is not a Hugging Face model folder.")
        return candidate
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if not isinstance(cached, str):
        cache = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise ModelNotAvailable(
            f"Pretrained model {name!r} is not on this machine: it is neither a folder under "
            f"{PRETRAINED_DIRS_ENV} nor in the Hugging Face cache ({cache}). Nothing is downloaded at run time; "
            f"copy the model there first (for example with `huggingface-cli download {name}` on a machine with "
            f"internet)."
        )
    return Path(cached).parent


def load_pretrained(name: str, *, device: torch.device | str = "cpu") -> Any:
    """A Hugging Face model wrapped in a TransformerBridge, loaded only from local files."""
    folder = resolve_pretrained_dir(name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformer_lens.model_bridge import TransformerBridge

    try:
        return TransformerBridge.boot_transformers(str(folder), device=device)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"Could not load pretrained model {name!r} from {folder}: {exc}") from None


def load_model_and_config(
    ref: NativeModelRef | RunModelRef | PretrainedModelRef, ctx: Any
) -> tuple[Any, NativeConfig | None]:
    """The model a reference names, on the context's device, and its native config (None for pretrained).

    Native models are seeded with ctx.seed.
    """
    if isinstance(ref, NativeModelRef):
        return build_native(ref.config, seed=ctx.seed, device=ctx.device), ref.config
    if isinstance(ref, RunModelRef):
        if ctx.artifact_resolver is None:
            raise ModelNotAvailable("This context cannot look up other runs' checkpoints.")
        path = ctx.artifact_resolver.artifact_path(ref.run, ref.artifact)
        return load_checkpoint(path, device=ctx.device)
    return load_pretrained(ref.name, device=ctx.device), None


def load_model(ref: NativeModelRef | RunModelRef | PretrainedModelRef, ctx: Any) -> Any:
    """The model a reference names, on the context's device. Native models are seeded with ctx.seed."""
    return load_model_and_config(ref, ctx)[0]


def bos_token(model: Any) -> int:
    """The id that starts a sequence: the tokenizer's BOS for pretrained models, 0 for native ones."""
    tokenizer = getattr(model, "tokenizer", None)
    bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
    return int(bos) if bos is not None else 0
