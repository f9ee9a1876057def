"""A machine's local copies of what it reads from a remote artifact storage (ARTIFACT_STORAGE=s3): checkpoints of
earlier runs and uploaded datasets, at ARTIFACT_ROOT/cache/<the object key's folder>/<version>/<file name>.

The kinds read files by path (safetensors, numpy, tokenizers), so a worker downloads each file once and reuses
it. The version is the file's sha256 where its row records one (every artifact, a text corpus), so a copy is
never taken for another file of the same name. A copy is downloaded under a temporary name, checked against
the recorded size and sha256, and renamed into place: a reader never sees half a file, and two processes
fetching the same file at once each end with a whole one. The engine's tokenization caches of a corpus land
beside its copy. Deleting a dataset removes this machine's copies of it; other machines' copies are disk space
that nothing refers to again.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

CHUNK = 1 << 20


class CopyMismatch(Exception):
    """The downloaded copy is not the file its row describes (size or sha256); the message says how."""


def cache_root() -> Path:
    return Path(settings.ARTIFACT_ROOT) / "cache"


def cache_path(key: str, *, version: str) -> Path:
    """Where the copy of the object `key` at `version` lives."""
    parts = PurePosixPath(key).parts
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"unsafe object key {key!r}")
    return cache_root().joinpath(*parts[:-1], version[:16] or "unversioned", parts[-1])


def cached_copy(storage: Any, name: str, *, size: int | None = None, sha256: str = "", version: str = "") -> Path:
    """A local file with the content of `name` in `storage`, downloaded unless this machine has it already.

    `size` and `sha256` (when known) are what the row recorded; the download is checked against them.
    `version` keys the copy where no sha256 is known. Raises FileNotFoundError when the storage has no such
    object, ArtifactStorageUnavailable when it cannot be reached, CopyMismatch when the bytes differ.
    """
    target = cache_path(storage.key(name), version=sha256 or version)
    if target.is_file() and (size is None or target.stat().st_size == size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        storage.download_to(name, partial)
        _check(partial, name, size=size, sha256=sha256)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _check(path: Path, name: str, *, size: int | None, sha256: str) -> None:
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise CopyMismatch(f"{name} has {actual_size} bytes in the artifact storage, not the {size} recorded.")
    if sha256:
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise CopyMismatch(f"{name} in the artifact storage does not have the recorded sha256 ({sha256[:12]}…).")
