"""Where files live: run artifacts at runs/<run id>/<attempt>/<file>, uploaded datasets at
datasets/<dataset id>/corpus.txt (with the engine's tokenization caches beside it) or items.jsonl (a prompt set's
records), names relative to the artifact storage, STORAGES["artifacts"].

With ARTIFACT_STORAGE=local (the default) the storage is the folder ARTIFACT_ROOT, which every worker and the web
server must see (a shared disk or mount in a multi-machine deployment): a worker writes an attempt straight into
it. With ARTIFACT_STORAGE=s3 the storage is a bucket: a worker writes an attempt into ARTIFACT_ROOT as scratch,
uploads the files the outcome keeps before their rows are written (`attempt_upload`), and reads other runs'
checkpoints and uploaded datasets through its local cache (`experiments.artifact_cache`). The resolvers below
hand the engine a local path either way.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import storages

from experiments.artifact_cache import CopyMismatch, cache_root, cached_copy
from experiments.engine.datasets import DatasetNotAvailable
from experiments.engine.errors import ModelNotAvailable
from experiments.engine.runtime import ArtifactRecord
from experiments.errors import ArtifactStorageUnavailable

log = logging.getLogger(__name__)


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def artifact_storage() -> Any:
    """STORAGES["artifacts"]: the folder ARTIFACT_ROOT, or an S3 bucket (see `experiments.storage_backends`)."""
    return storages["artifacts"]


def run_attempt_dir(run_id: int, attempt: int) -> Path:
    """The folder an attempt writes its files into: the store itself with local storage, else scratch."""
    return artifact_root() / "runs" / str(run_id) / str(attempt)


def attempt_file_name(run_id: int, attempt: int, filename: str) -> str:
    """The storage name of a file an attempt wrote (what `Artifact.path` records)."""
    return f"runs/{run_id}/{attempt}/{filename}"


def dataset_dir(dataset_id: int) -> Path:
    """The folder of one uploaded dataset on the local disk: its text file and the tokenization caches the engine
    writes (ARTIFACT_STORAGE=local)."""
    return artifact_root() / "datasets" / str(dataset_id)


def dataset_folder_name(dataset_id: int) -> str:
    return f"datasets/{dataset_id}"


def artifact_file(relative_path: str) -> Path:
    """The absolute path of an artifact, refusing anything that escapes the root."""
    root = artifact_root().resolve()
    path = (root / relative_path).resolve()
    if root not in path.parents:
        raise ValueError(f"artifact path {relative_path!r} is outside ARTIFACT_ROOT")
    return path


def attempt_upload(*, run_id: int, attempt: int, records: Iterable[ArtifactRecord]) -> None:
    """Copy the files an attempt keeps from its scratch folder into a remote artifact storage, before their rows
    are written; nothing to do when the storage is the local folder (the scratch folder is the store).

    Raises ArtifactStorageUnavailable naming the storage and the artifact; the objects it had uploaded by then
    are deleted again where the storage answers (the next attempt writes under its own attempt number anyway).
    """
    storage = artifact_storage()
    if storage.is_local:
        return
    scratch = run_attempt_dir(run_id, attempt)
    uploaded: list[str] = []
    for record in records:
        name = attempt_file_name(run_id, attempt, record.path)
        try:
            storage.put_file(scratch / record.path, name, content_type=record.content_type)
        except ArtifactStorageUnavailable as exc:
            _forget(storage, uploaded)
            raise ArtifactStorageUnavailable(f"Could not store run {run_id}'s artifact {record.name!r}: {exc}") from exc
        uploaded.append(name)


def _forget(storage: Any, names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except Exception as exc:  # the storage that just failed may well fail again: the objects stay, unused
            log.warning("could not delete %s from %s after a failed upload: %s", name, storage.describe(), exc)
            return


def attempt_scratch_remove(*, run_id: int, attempt: int) -> None:
    """Remove an attempt's scratch folder once its outcome is stored, when the store is elsewhere (S3)."""
    if not artifact_storage().is_local:
        shutil.rmtree(run_attempt_dir(run_id, attempt), ignore_errors=True)


def artifact_open(name: str) -> tuple[IO[bytes], int | None]:
    """A stored file opened for reading, and its size where the storage says it up front.

    Raises FileNotFoundError (or ValueError, a name outside the root) when it is not there, and
    ArtifactStorageUnavailable when the storage cannot be reached.
    """
    storage = artifact_storage()
    if storage.is_local:
        return artifact_file(name).open("rb"), None
    return storage.stream(name)


def dataset_store(*, dataset_id: int, source: Path, filename: str) -> str:
    """Put an uploaded dataset's checked file into a remote storage as datasets/<id>/<filename>; its name.

    It replaces whatever an earlier upload that never committed left under that name (an object that upload
    left under another name is unused, and goes when the dataset is deleted). Raises
    ArtifactStorageUnavailable when the storage cannot be reached.
    """
    storage = artifact_storage()
    name = f"{dataset_folder_name(dataset_id)}/{filename}"
    content_type = "application/jsonl" if filename.endswith(".jsonl") else "text/plain; charset=utf-8"
    try:
        storage.put_file(source, name, content_type=content_type)
    except ArtifactStorageUnavailable as exc:
        raise ArtifactStorageUnavailable(f"Could not store dataset {dataset_id}: {exc}") from exc
    return name


def dataset_files_delete(*, dataset_id: int) -> None:
    """Delete a dataset's files: its folder under ARTIFACT_ROOT (local storage), or its objects in the bucket and
    this machine's cached copies. Raises ArtifactStorageUnavailable when the bucket cannot be reached."""
    storage = artifact_storage()
    if storage.is_local:
        shutil.rmtree(dataset_dir(dataset_id), ignore_errors=True)
        return
    folder = dataset_folder_name(dataset_id)
    try:
        storage.delete_folder(folder)
    except ArtifactStorageUnavailable as exc:
        raise ArtifactStorageUnavailable(f"Could not delete dataset {dataset_id}'s files: {exc}") from exc
    shutil.rmtree(cache_root().joinpath(*PurePosixPath(storage.key(folder)).parts), ignore_errors=True)


class DatabaseArtifactResolver:
    """Finds the checkpoints of earlier runs for `{"source": "run", ...}` model references."""

    def artifact_path(self, run_id: int, name: str) -> Path:
        from experiments.models import Artifact, RunStatus

        artifact = Artifact.objects.filter(run_id=run_id, name=name, run__status=RunStatus.SUCCEEDED).first()
        if artifact is None:
            raise ModelNotAvailable(missing_artifact_message(run_id, name))
        storage = artifact_storage()
        if storage.is_local:
            path = artifact_file(artifact.path)
            if not path.is_file():
                raise ModelNotAvailable(f"Run {run_id}'s artifact {name!r} is recorded but its file {path} is missing.")
            return path
        try:
            return cached_copy(storage, artifact.path, size=artifact.size, sha256=artifact.sha256)
        except ArtifactStorageUnavailable as exc:
            raise ArtifactStorageUnavailable(f"Could not read run {run_id}'s artifact {name!r}: {exc}") from exc
        except FileNotFoundError:
            raise ModelNotAvailable(
                f"Run {run_id}'s artifact {name!r} is recorded but its file {artifact.path} is not in "
                f"{storage.describe()}."
            ) from None
        except CopyMismatch as exc:
            raise ModelNotAvailable(f"Run {run_id}'s artifact {name!r} cannot be used: {exc}") from None

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

        dataset = Dataset.objects.filter(pk=dataset_id).only("name", "path", "format", "size", "sha256").first()
        if dataset is None:
            raise DatasetNotAvailable(missing_dataset_message(dataset_id))
        if dataset.is_prompt_set != prompt_set:
            raise DatasetNotAvailable(dataset_type_message(dataset, prompt_set=prompt_set))
        storage = artifact_storage()
        if not storage.is_local:
            return _dataset_copy(storage, dataset)
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


def _dataset_copy(storage: Any, dataset) -> Path:
    """This machine's copy of a dataset's file in a remote storage. A text corpus is stored as uploaded, so its
    size and sha256 check the copy; a prompt set's normalized records are keyed by the upload's sha256."""
    known = {} if dataset.is_prompt_set else {"size": dataset.size, "sha256": dataset.sha256}
    try:
        return cached_copy(storage, dataset.path, version=dataset.sha256, **known)
    except ArtifactStorageUnavailable as exc:
        raise ArtifactStorageUnavailable(f"Could not read dataset {dataset.pk} ({dataset.name!r}): {exc}") from exc
    except FileNotFoundError:
        raise DatasetNotAvailable(
            f"Dataset {dataset.pk} ({dataset.name!r}) is recorded but its file {dataset.path!r} is not in "
            f"{storage.describe()}; upload it again."
        ) from None
    except CopyMismatch as exc:
        raise DatasetNotAvailable(f"Dataset {dataset.pk} ({dataset.name!r}) cannot be used: {exc}") from None


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
