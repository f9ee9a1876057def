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
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from experiments.engine.errors import ArtifactError, RunCancelled

ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_SERIES_POINTS = 5000  # per metric; beyond this the series is thinned (every other point kept)
PART_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")  # it prefixes metric names: L2 -> L2_copied_segment_loss
MAX_LOG_ENTRIES = 500  # the first LOG_HEAD entries and the newest are kept; the rest are counted
LOG_HEAD = 100
LOG_LEVELS = ("info", "warning")
# An absolute path (/home/x/..., C:\\x\\...) in a log message: the log is public, the server's layout is not.
# Only a path that starts a word: "1/2/4", "and/or" and the path of a URL are left alone.
_PATH = re.compile(r"(?:(?<![\w:/.\\])[A-Za-z]:\\|(?<![\w:/.\\-])/)(?:[^\s/\\:'\"]+[/\\])+[^\s/\\:'\"]*")
_DIGITS = re.compile(r"[0-9.,]+")


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


@dataclass
class Part:
    """One finished part of a composite kind (a depth, a model): what the run page shows as a row and a section.

    The kind fills `metrics` (unprefixed names: the run's metrics get them as `<key>_<name>`) and `findings`
    inside `RunContext.part`; `artifacts` collects what it saved meanwhile.
    """

    key: str
    label: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def part_metrics(parts: list[dict[str, Any]]) -> dict[str, float | None]:
    """The run-level metrics of finished parts: `<key>_<name>` for each part's metric (criteria read these)."""
    return {f"{part['key']}_{name}": value for part in parts for name, value in part["metrics"].items()}


def without_paths(message: str) -> str:
    """The message with absolute file paths replaced by '…': a run's log is public, the server's layout is not."""
    return _PATH.sub("…", message)


class Reporter(Protocol):
    """Where a run's reports go. Every method must be cheap: kinds call them in their loops."""

    def progress(self, fraction: float, message: str) -> None: ...

    def metric(self, name: str, value: float, step: int) -> None: ...

    def artifact(self, record: ArtifactRecord) -> None: ...

    def part(self, part: dict[str, Any]) -> None: ...

    def log(self, entry: dict[str, Any]) -> None: ...

    def cancelled(self) -> bool: ...


class MemoryReporter:
    """Keeps everything in memory; for tests and notebooks."""

    def __init__(self) -> None:
        self.progress_log: list[tuple[float, str]] = []
        self.metrics: list[tuple[str, float, int]] = []
        self.artifacts: list[ArtifactRecord] = []
        self.parts: list[dict[str, Any]] = []
        self.log_entries: list[dict[str, Any]] = []
        self.cancel = False

    def progress(self, fraction: float, message: str) -> None:
        self.progress_log.append((fraction, message))

    def metric(self, name: str, value: float, step: int) -> None:
        self.metrics.append((name, value, step))

    def artifact(self, record: ArtifactRecord) -> None:
        self.artifacts.append(record)

    def part(self, part: dict[str, Any]) -> None:
        self.parts.append(part)

    def log(self, entry: dict[str, Any]) -> None:
        self.log_entries.append(entry)

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
        # Finds uploaded datasets: text corpora (`{"source": "text_corpus", ...}`, see engine.datasets) and prompt
        # sets (`{"source": "prompt_set", ...}`, see engine.evals.prompt_sets).
        self.dataset_resolver = dataset_resolver
        self.artifacts: dict[str, ArtifactRecord] = {}
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.parts: list[dict[str, Any]] = []  # finished parts, as `Part.as_dict()`
        self.log_entries: list[dict[str, Any]] = []
        self.log_left_out = 0
        self._current_part: Part | None = None
        self._started = time.monotonic()
        self._last_fraction = 0.0
        self._last_stage = ""
        self.progress_message = ""  # the latest progress message: where the kind was if it fails

    # -- progress and metrics -------------------------------------------------------------

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the run is, 0..1 (never moves backwards)."""
        fraction = min(1.0, max(self._last_fraction, float(fraction)))
        self._last_fraction = fraction
        self.progress_message = without_paths(message)[:200]
        self.reporter.progress(fraction, self.progress_message)
        # A new stage goes to the log; the same message with new numbers (step 100, step 200...) does not.
        stage = _DIGITS.sub("#", self.progress_message)
        if message and stage != self._last_stage:
            self._last_stage = stage
            self.log(self.progress_message)

    def log(self, message: str, level: str = "info") -> None:
        """A line of the run's log (a stage, a warning, a note on the data), shown on the run page."""
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {LOG_LEVELS}")
        seconds = round(time.monotonic() - self._started, 2)
        entry = {"t": seconds, "level": level, "message": without_paths(message)[:500]}
        self.log_entries.append(entry)
        if len(self.log_entries) > MAX_LOG_ENTRIES:
            del self.log_entries[LOG_HEAD]
            self.log_left_out += 1
        self.reporter.log(entry)

    @contextmanager
    def part(self, key: str, label: str) -> Iterator[Part]:
        """A part of a composite kind: fill the yielded `Part`'s metrics and findings; when the block ends
        without an error, the part is reported finished (the worker stores it with its next heartbeat, within
        a second or so, so a run cancelled, failed or killed later keeps it). Series logged inside are named
        `<key>/<name>`; artifacts carry meta `part`."""
        if not PART_KEY.match(key):
            raise ValueError(f"Part key {key!r} must be a letter then up to 31 letters, digits or '_'.")
        if self._current_part is not None:
            raise RuntimeError("Parts do not nest.")
        if any(p["key"] == key for p in self.parts):
            raise ValueError(f"This run already has a part {key!r}.")
        self._current_part = current = Part(key=key, label=label)
        try:
            yield current
        finally:
            self._current_part = None
        current.metrics = {name: _finite_or_none(value) for name, value in current.metrics.items()}
        record = current.as_dict()
        self.parts.append(record)
        self.log(f"{label}: finished")
        self.reporter.part(record)

    def log_metric(self, name: str, value: float, step: int) -> None:
        """One point of a step series (loss at step 100, ...). Non-finite values are kept as None."""
        point = (int(step), _finite_or_none(value))
        if self._current_part is not None:
            name = f"{self._current_part.key}/{name}"
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
        meta = dict(meta or {})
        if self._current_part is not None:
            meta["part"] = self._current_part.key
            self._current_part.artifacts.append(name)
        record = ArtifactRecord(
            name=name,
            path=filename,
            artifact_type=artifact_type,
            content_type=content_type,
            size=path.stat().st_size,
            sha256=_sha256(path),
            meta=meta,
        )
        self.artifacts[name] = record
        self.reporter.artifact(record)
        return record


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


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
