"""The context a kind runs in: progress, step metrics, artifacts, cancellation, seeds, device.

A kind only talks to its `RunContext`. Where the reports go is the
`Reporter`'s business: the worker's reporter writes them to the database on a
heartbeat, the command-line one draws a progress bar, tests keep them in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from experiments.engine.errors import ArtifactError, RunCancelled

ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_SERIES_POINTS = 5000  # per metric; beyond this the series is thinned (every other point kept)


Report = Callable[[float, str], None]  # progress 0..1 and a message: `RunContext.progress` or a part of it


def within(report: Report, start: float, end: float, label: str = "") -> Report:
    """A child's progress (0..1) reported as the range [start, end] of its parent's, its messages prefixed by
    `label`: a composite kind gives each part its own range, so the bar moves steadily and never jumps back."""

    def child(fraction: float, message: str = "") -> None:
        report(start + (end - start) * min(1.0, max(0.0, fraction)), f"{label}{message}")

    return child


@dataclass(frozen=True)
class ArtifactRecord:
    """A file a run wrote: `path` is relative to the run's artifact folder."""

    name: str
    path: str
    artifact_type: str  # json | tensors | plotly | checkpoint | text
    content_type: str
    size: int
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reporter(Protocol):
    """Where a run's reports go. Every method must be cheap: kinds call them in their loops."""

    def progress(self, fraction: float, message: str) -> None: ...

    def metric(self, name: str, value: float, step: int) -> None: ...

    def artifact(self, record: ArtifactRecord) -> None: ...

    def cancelled(self) -> bool: ...


class MemoryReporter:
    """Keeps everything in memory; for tests and notebooks."""

    def __init__(self) -> None:
        self.progress_log: list[tuple[float, str]] = []
        self.metrics: list[tuple[str, float, int]] = []
        self.artifacts: list[ArtifactRecord] = []
        self.cancel = False

    def progress(self, fraction: float, message: str) -> None:
        self.progress_log.append((fraction, message))

    def metric(self, name: str, value: float, step: int) -> None:
        self.metrics.append((name, value, step))

    def artifact(self, record: ArtifactRecord) -> None:
        self.artifacts.append(record)

    def cancelled(self) -> bool:
        return self.cancel


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run's numbers repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(preference: str) -> torch.device:
    """`gpu` means CUDA when there is one; everything else runs on the CPU."""
    if preference == "gpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


class RunContext:
    """What a kind gets. See the module docstring."""

    def __init__(
        self,
        *,
        seed: int,
        device: torch.device | str,
        artifact_dir: Path,
        reporter: Reporter | None = None,
        artifact_resolver: Any = None,
        dataset_resolver: Any = None,
    ) -> None:
        self.seed = seed
        self.device = torch.device(device)
        self.artifact_dir = Path(artifact_dir)
        self.reporter: Reporter = reporter or MemoryReporter()
        # Finds artifacts of other runs for `{"source": "run", ...}` model references (see engine.models).
        self.artifact_resolver = artifact_resolver
        # Finds uploaded text datasets for `{"source": "text_corpus", ...}` references (see engine.datasets).
        self.dataset_resolver = dataset_resolver
        self.artifacts: dict[str, ArtifactRecord] = {}
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._last_fraction = 0.0
        self.progress_message = ""  # the latest progress message: where the kind was if it fails

    # -- progress and metrics -------------------------------------------------------------

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the run is, 0..1 (never moves backwards)."""
        fraction = min(1.0, max(self._last_fraction, float(fraction)))
        self._last_fraction = fraction
        self.progress_message = message[:200]
        self.reporter.progress(fraction, self.progress_message)

    def log_metric(self, name: str, value: float, step: int) -> None:
        """One point of a step series (loss at step 100, ...). Non-finite values are kept as None."""
        number = float(value)
        point = (int(step), number if math.isfinite(number) else None)
        points = self.series.setdefault(name, [])
        points.append(point)
        if len(points) > MAX_SERIES_POINTS:
            del points[1::2]
        self.reporter.metric(name, point[1], point[0])

    def check_cancelled(self) -> None:
        """Call between steps: raises RunCancelled once the run was cancelled."""
        if self.reporter.cancelled():
            raise RunCancelled()

    # -- artifacts --------------------------------------------------------------------------

    def save_artifact(self, name: str, obj: Any, *, meta: Mapping[str, Any] | None = None) -> ArtifactRecord:
        """Save JSON data, tensors or arrays (safetensors), or a plotly figure, under `name`.

        A dict of tensors/arrays becomes one safetensors file; a single tensor is
        stored under the key "tensor". Names are unique within a run.
        """
        if not ARTIFACT_NAME.match(name):
            raise ArtifactError(f"Artifact name {name!r} must be 1-100 letters, digits, '_', '-' or '.'.")
        if name in self.artifacts:
            raise ArtifactError(f"This run already saved an artifact named {name!r}.")
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        if _is_plotly_figure(obj):
            filename, artifact_type, content_type = f"{name}.plotly.json", "plotly", "application/json"
            (self.artifact_dir / filename).write_text(obj.to_json(), encoding="utf-8")
        elif _is_tensor_like(obj) or (
            isinstance(obj, Mapping) and obj and all(_is_tensor_like(v) for v in obj.values())
        ):
            from safetensors.torch import save_file

            tensors = {"tensor": obj} if _is_tensor_like(obj) else dict(obj)
            tensors = {k: _as_tensor(v) for k, v in tensors.items()}
            filename, artifact_type, content_type = f"{name}.safetensors", "tensors", "application/octet-stream"
            save_file(tensors, str(self.artifact_dir / filename), metadata=_string_meta(meta))
        else:
            filename, artifact_type, content_type = f"{name}.json", "json", "application/json"
            try:
                text = json.dumps(obj, allow_nan=False, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise ArtifactError(f"Artifact {name!r} is not JSON-serializable: {exc}") from None
            (self.artifact_dir / filename).write_text(text, encoding="utf-8")
        return self.register_file(name, filename, artifact_type, content_type, meta=meta)

    def register_file(
        self,
        name: str,
        filename: str,
        artifact_type: str,
        content_type: str,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> ArtifactRecord:
        """Record a file the kind wrote itself into `artifact_dir` (checkpoints do this)."""
        path = self.artifact_dir / filename
        record = ArtifactRecord(
            name=name,
            path=filename,
            artifact_type=artifact_type,
            content_type=content_type,
            size=path.stat().st_size,
            sha256=_sha256(path),
            meta=dict(meta or {}),
        )
        self.artifacts[name] = record
        self.reporter.artifact(record)
        return record


def _is_plotly_figure(obj: Any) -> bool:
    return type(obj).__module__.startswith("plotly.") and hasattr(obj, "to_json")


def _is_tensor_like(obj: Any) -> bool:
    return isinstance(obj, torch.Tensor | np.ndarray)


def _as_tensor(value: Any) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
    return tensor.detach().to("cpu").contiguous()


def _string_meta(meta: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()} if meta else None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray | torch.Tensor):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def environment_versions() -> dict[str, str]:
    """Versions that decide a run's numbers, for the reproducibility manifest."""
    import platform

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    try:
        from importlib.metadata import version

        versions["transformer_lens"] = version("transformer-lens")
    except Exception:  # not installed: the manifest says so
        versions["transformer_lens"] = "not installed"
    versions["cuda"] = torch.version.cuda or "none"
    versions["cpu_count"] = str(os.cpu_count())
    return versions
