"""Where files live: run artifacts at ARTIFACT_ROOT/runs/<run id>/<attempt>/<file>, uploaded
datasets at ARTIFACT_ROOT/datasets/<dataset id>/corpus.txt (with the engine's tokenization caches beside it)
or items.jsonl (a prompt set's records).

Every worker and the web server must see the same ARTIFACT_ROOT (a shared
disk or mount in a multi-machine deployment).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from experiments.engine.datasets import DatasetNotAvailable
from experiments.engine.errors import ModelNotAvailable


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def run_attempt_dir(run_id: int, attempt: int) -> Path:
    return artifact_root() / "runs" / str(run_id) / str(attempt)


def dataset_dir(dataset_id: int) -> Path:
    """The folder of one uploaded dataset: its text file and the tokenization caches the engine writes."""
    return artifact_root() / "datasets" / str(dataset_id)


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

    def checkpoints(self, run_id: int) -> list[tuple[int, str]]:
        """(step, artifact name) of every checkpoint a succeeded run saved, by step."""
        from experiments.models import Artifact, RunStatus

        rows = Artifact.objects.filter(run_id=run_id, artifact_type="checkpoint", run__status=RunStatus.SUCCEEDED)
        found = sorted((int(a.meta.get("step", 0)), a.name) for a in rows)
        if not found:
            raise ModelNotAvailable(missing_checkpoints_message(run_id))
        return found


def missing_checkpoints_message(run_id: int) -> str:
    from experiments.models import ExperimentRun, RunStatus

    run = ExperimentRun.objects.filter(pk=run_id).only("status", "kind").first()
    if run is None:
        return f"There is no run {run_id}."
    if run.status != RunStatus.SUCCEEDED:
        return f"Run {run_id} has not succeeded (it is {run.status}), so its checkpoints cannot be used."
    return f"Run {run_id} ({run.kind}) has no checkpoints; train_transformer runs save them."


def missing_artifact_message(run_id: int, name: str) -> str:
    from experiments.models import Artifact, ExperimentRun, RunStatus

    run = ExperimentRun.objects.filter(pk=run_id).only("status").first()
    if run is None:
        return f"There is no run {run_id}."
    if run.status != RunStatus.SUCCEEDED:
        return f"Run {run_id} has not succeeded (it is {run.status}), so its artifacts cannot be used."
    names = list(Artifact.objects.filter(run_id=run_id).values_list("name", flat=True))
    return f"Run {run_id} has no artifact {name!r}; it has: {', '.join(names) or 'none'}."


class DatabaseDatasetResolver:
    """Finds the file of an uploaded dataset: a text corpus for `{"source": "text_corpus", "dataset": <id>}`,
    a prompt set's items.jsonl for `{"source": "prompt_set", "dataset": <id>}`. Each refuses the other type."""

    def dataset_path(self, dataset_id: int) -> Path:
        return self._path(dataset_id, prompt_set=False)

    def prompt_set_path(self, dataset_id: int) -> Path:
        return self._path(dataset_id, prompt_set=True)

    def _path(self, dataset_id: int, *, prompt_set: bool) -> Path:
        from experiments.models import Dataset

        dataset = Dataset.objects.filter(pk=dataset_id).only("name", "path", "format").first()
        if dataset is None:
            raise DatasetNotAvailable(missing_dataset_message(dataset_id))
        if dataset.is_prompt_set != prompt_set:
            raise DatasetNotAvailable(dataset_type_message(dataset, prompt_set=prompt_set))
        try:
            path = artifact_file(dataset.path)
        except ValueError:
            path = None
        if path is None or not path.is_file():
            raise DatasetNotAvailable(
                f"Dataset {dataset_id} ({dataset.name!r}) is recorded but its file {dataset.path!r} is missing "
                "under ARTIFACT_ROOT; upload it again."
            )
        return path


class DatabaseReferenceResolver(DatabaseArtifactResolver, DatabaseDatasetResolver):
    """Both lookups, for the kinds' `check_references` (a kind may read an uploaded corpus's vocabulary before a
    run is queued)."""


def dataset_type_message(dataset, *, prompt_set: bool) -> str:
    """Why a reference of one type (text_corpus, prompt_set) cannot name a dataset of the other."""
    if prompt_set:
        return (
            f"Dataset {dataset.pk} ({dataset.name!r}) is a text corpus, not a prompt set: reference it as "
            '{"source": "text_corpus", ...}, or upload a JSONL or CSV prompt set.'
        )
    return (
        f"Dataset {dataset.pk} ({dataset.name!r}) is a prompt set ({dataset.format}), not a text corpus: reference it "
        'as {"source": "prompt_set", ...}, or upload a text file.'
    )


def missing_dataset_message(dataset_id: int) -> str:
    return f"There is no dataset {dataset_id}; upload one at /datasets/ (or POST /api/datasets/)."
