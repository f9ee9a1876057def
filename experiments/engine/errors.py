"""Errors the engine raises; the platform turns each into a clear message or a 4xx."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: something about a spec or a run that a person can fix."""


class UnknownKind(EngineError):
    def __init__(self, key: str, known: list[str]) -> None:
        self.key = key
        super().__init__(f"Unknown experiment kind {key!r}; registered kinds: {', '.join(sorted(known)) or 'none'}.")


class DuplicateKind(EngineError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"An experiment kind with key {key!r} is already registered.")


class InvalidParams(EngineError):
    """Params that fail the kind's model; `errors` maps a dotted field path to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        super().__init__(f"Invalid params: {summary}")


class RunCancelled(EngineError):
    """Raised by `ctx.check_cancelled()` once someone cancelled the run."""

    def __init__(self) -> None:
        super().__init__("The run was cancelled.")


class ModelNotAvailable(EngineError):
    """A referenced model (pretrained weights, an earlier run's checkpoint) cannot be loaded here."""


class ArtifactError(EngineError):
    """An artifact that cannot be saved or found."""
