"""The registry of experiment kinds, by key.

Registering a key twice raises `DuplicateKind`; looking up a key that is not
there raises `UnknownKind`, which the API turns into a 400. Specs only ever
name a key and give data: user input never becomes code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from experiments.engine.errors import DuplicateKind, InvalidParams, UnknownKind

Device = Literal["cpu", "gpu"]


@dataclass
class KindResult:
    """What a kind returns.

    - `findings`: what the run found, one sentence each, built from its numbers ("2 of 4 depths form induction
      heads: ..."); the pages lead with them. Every kind states at least one.
    - `metrics`: named scalars (criteria read these); a composite kind's parts add theirs as `<part>_<name>`.
    - `headline`: the name of the artifact (a plotly figure) that shows the result best, or None.
    - `summary`: JSON detail (tables, names) for the API and the artifacts.
    """

    findings: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    headline: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """One registered experiment kind.

    `metrics` maps each metric the kind produces to its meaning; a composite kind also maps the metrics of each
    part (`part_metrics`, unprefixed) and names its step series in words (`series`, for chart titles and
    axes). `soft_time_limit`
    raises inside the run (it can clean up); `time_limit` kills the worker
    process. `version` is part of every spec hash: bump it when a change to the
    kind changes its results, so cached runs are not reused across it.
    """

    key: str
    title: str
    doc: str
    params_model: type[BaseModel]
    metrics: Mapping[str, str]
    run: Callable[[Any, Any], KindResult]
    part_metrics: Mapping[str, str] = field(default_factory=dict)
    series: Mapping[str, str] = field(default_factory=dict)
    device: Device = "cpu"
    soft_time_limit: int = 3600
    time_limit: int = 3660
    version: str = "1"
    # Optional: lower limits for particular params (never higher than the kind's).
    limits_for: Callable[[Any], tuple[int, int]] | None = None
    # Optional: what must hold of the runs and models the params refer to, checked before a run is queued.
    # Given the params and an ArtifactResolver, it returns {dotted field path: why} for each problem.
    check_references: Callable[[Any, Any], Mapping[str, str]] | None = None
    # Optional: what a spec must still be given before it can run, though it may be saved without it (a request
    # set the user uploads): {dotted field path: what to supply}. Triggering refuses while any is missing.
    needs: Callable[[Any], Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.soft_time_limit >= self.time_limit:
            raise ValueError(f"{self.key}: soft_time_limit must be below time_limit")
        config = self.params_model.model_config
        strict = config.get("strict") and config.get("allow_inf_nan") is False
        if not config.get("frozen") or config.get("extra") != "forbid" or not strict:
            raise ValueError(
                f"{self.key}: Params must be frozen, strict (no NaN or Infinity) and extra='forbid' (see KindParams)"
            )

    def parse_params(self, data: Mapping[str, Any] | None) -> BaseModel:
        """Validate raw params; raise InvalidParams mapping each bad field's dotted path to messages."""
        if data is not None and not isinstance(data, Mapping):
            raise InvalidParams({"params": ["Must be a JSON object."]})
        try:
            return self.params_model.model_validate(dict(data or {}))
        except ValidationError as exc:
            errors: dict[str, list[str]] = {}
            for err in exc.errors(include_url=False):
                path = ".".join(str(part) for part in err["loc"]) or "params"
                errors.setdefault(path, []).append(err["msg"])
            raise InvalidParams(errors) from None

    def normalized_params(self, params: BaseModel) -> dict[str, Any]:
        """Params with every default filled in, as JSON: what the spec hash and the run record use."""
        return params.model_dump(mode="json")

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()

    def time_limits(self, params: BaseModel) -> tuple[int, int]:
        """(soft, hard) seconds for a run with these params."""
        if self.limits_for is None:
            return self.soft_time_limit, self.time_limit
        soft, hard = self.limits_for(params)
        return min(soft, self.soft_time_limit), min(hard, self.time_limit)


class Registry:
    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def register(self, kind: Kind) -> Kind:
        if kind.key in self._kinds:
            raise DuplicateKind(kind.key)
        self._kinds[kind.key] = kind
        return kind

    def get(self, key: str) -> Kind:
        try:
            return self._kinds[key]
        except KeyError:
            raise UnknownKind(key, list(self._kinds)) from None

    def __contains__(self, key: object) -> bool:
        return key in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(sorted(self._kinds.values(), key=lambda k: k.key))

    def keys(self) -> list[str]:
        return sorted(self._kinds)


registry = Registry()


def kind_from_module(module: Any, **overrides: Any) -> Kind:
    """Build a Kind from a kind module's conventional names (KEY, TITLE, Params, METRICS, run, ...)."""
    values = {
        "key": module.KEY,
        "title": module.TITLE,
        "doc": inspect.cleandoc(module.__doc__ or ""),
        "params_model": module.Params,
        "metrics": module.METRICS,
        "run": module.run,
        "part_metrics": getattr(module, "PART_METRICS", {}),
        "series": getattr(module, "SERIES", {}),
        "device": getattr(module, "DEVICE", "cpu"),
        "soft_time_limit": getattr(module, "SOFT_TIME_LIMIT", 3600),
        "time_limit": getattr(module, "TIME_LIMIT", 3660),
        "version": getattr(module, "VERSION", "1"),
        "limits_for": getattr(module, "limits_for", None),
        "check_references": getattr(module, "check_references", None),
        "needs": getattr(module, "needs", None),
    }
    values.update(overrides)
    return Kind(**values)
