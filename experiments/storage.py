"""Where run artifacts live: ARTIFACT_ROOT/runs/<run id>/<attempt>/<file>.

Every worker and the web server must see the same ARTIFACT_ROOT (a shared
disk or mount in a multi-machine deployment).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from experiments.engine.errors import ModelNotAvailable


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def run_attempt_dir(run_id: int, attempt: int) -> Path:
    return artifact_root() / "runs" / str(run_id) / str(attempt)


def artifact_file(relative_path: str) -> Path:
    """The absolute path of an artifact, refusing anything that escapes the root."""
    root = artifact_root().resolve()
    path = (root / relative_path).resolve()
    if root not in path.parents:
        raise ValueError(f"artifact path {relative_path!r} is outside ARTIFACT_ROOT")
    return path


class DatabaseArtifactResolver:
    """Finds the checkpoints of earlier runs for `{"source": "run", ...}` model references."""

    def artifact_path(self, run_id: int, name: str) -> Path:
        from experiments.models import Artifact, RunStatus

        artifact = Artifact.objects.filter(run_id=run_id, name=name, run__status=RunStatus.SUCCEEDED).first()
        if artifact is None:
            raise ModelNotAvailable(missing_artifact_message(run_id, name))
        path = artifact_file(artifact.path)
        if not path.is_file():
            raise ModelNotAvailable(f"Run {run_id}'s artifact {name!r} is recorded but its file {path} is missing.")
        return path


def missing_artifact_message(run_id: int, name: str) -> str:
    from experiments.models import Artifact, ExperimentRun, RunStatus

    run = ExperimentRun.objects.filter(pk=run_id).only("status").first()
    if run is None:
        return f"There is no run {run_id}."
    if run.status != RunStatus.SUCCEEDED:
        return f"Run {run_id} has not succeeded (it is {run.status}), so its artifacts cannot be used."
    names = list(Artifact.objects.filter(run_id=run_id).values_list("name", flat=True))
    return f"Run {run_id} has no artifact {name!r}; it has: {', '.join(names) or 'none'}."
