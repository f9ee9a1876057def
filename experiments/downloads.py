"""Artifact downloads: one way to answer with a run's file, for the run page and the API alike."""

from __future__ import annotations

import logging
from pathlib import Path

from django.http import FileResponse

from experiments.models import Artifact
from experiments.selectors import artifact_get
from experiments.storage import artifact_file

logger = logging.getLogger(__name__)


class ArtifactNotFound(Exception):
    """No such artifact, or its file is gone; the message says which (pages and API answer 404)."""


def artifact_download_name(artifact: Artifact) -> str:
    """What the browser saves it as: 'run-12-checkpoint-100.safetensors' (the file's extension added)."""
    suffix = "" if Path(artifact.name).suffix else Path(artifact.path).suffix
    return f"run-{artifact.run_id}-{artifact.name}{suffix}"


def artifact_download(*, run_id: int, name: str) -> FileResponse:
    """The artifact's file as an attachment with its content type; ArtifactNotFound when it cannot be served."""
    try:
        artifact = artifact_get(run_id=run_id, name=name)
    except Artifact.DoesNotExist:
        raise ArtifactNotFound(f"Run {run_id} has no artifact {name!r}.") from None
    try:
        handle = artifact_file(artifact.path).open("rb")
    except (ValueError, OSError) as exc:  # outside ARTIFACT_ROOT, or the file is gone
        logger.warning("artifact %s of run %s cannot be read: %s", name, run_id, exc)
        raise ArtifactNotFound(f"The file of run {run_id}'s artifact {name!r} is missing.") from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=artifact_download_name(artifact),
        content_type=artifact.content_type or "application/octet-stream",
    )
