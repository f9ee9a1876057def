"""Artifact downloads: one way to answer with a run's file, for the run page and the API alike.

The file is streamed from the artifact storage (the local folder, or the S3 bucket: the bytes pass through as
they arrive, never whole in memory). A storage that cannot be reached raises ArtifactStorageUnavailable before
any byte is sent, which pages and the API answer with a 503 naming it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.http import FileResponse

from experiments.errors import ArtifactStorageUnavailable
from experiments.models import Artifact
from experiments.selectors import artifact_get
from experiments.storage import artifact_open

logger = logging.getLogger(__name__)


class ArtifactNotFound(Exception):
    """No such artifact, or its file is gone; the message says which (pages and API answer 404)."""


def artifact_download_name(artifact: Artifact) -> str:
    """What the browser saves it as: 'run-12-checkpoint-100.safetensors' (the file's extension added)."""
    suffix = "" if Path(artifact.name).suffix else Path(artifact.path).suffix
    return f"run-{artifact.run_id}-{artifact.name}{suffix}"


def artifact_download(*, run_id: int, name: str) -> FileResponse:
    """The artifact's file as an attachment with its content type; ArtifactNotFound when it cannot be served,
    ArtifactStorageUnavailable when the storage does not answer."""
    try:
        artifact = artifact_get(run_id=run_id, name=name)
    except Artifact.DoesNotExist:
        raise ArtifactNotFound(f"Run {run_id} has no artifact {name!r}.") from None
    try:
        handle, size = artifact_open(artifact.path)
    except ArtifactStorageUnavailable as exc:
        raise ArtifactStorageUnavailable(f"Run {run_id}'s artifact {name!r} cannot be downloaded now: {exc}") from exc
    except (ValueError, OSError) as exc:  # outside ARTIFACT_ROOT, or the file is gone
        logger.warning("artifact %s of run %s cannot be read: %s", name, run_id, exc)
        raise ArtifactNotFound(f"The file of run {run_id}'s artifact {name!r} is missing.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=artifact_download_name(artifact),
        content_type=artifact.content_type or "application/octet-stream",
    )
    if size is not None:  # a stream's length, which FileResponse cannot find out itself
        response["Content-Length"] = str(size)
    return response
