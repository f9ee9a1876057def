"""Uploaded datasets: upload (checked, hashed, stored with its row) and delete.

A dataset is a UTF-8 file of at most `DATASET_MAX_BYTES`. A text corpus is stored
at datasets/<id>/corpus.txt in the artifact storage (ARTIFACT_ROOT, or the S3 bucket
with ARTIFACT_STORAGE=s3); kinds read it by reference
(`{"source": "text_corpus", "dataset": <id>}`) and the engine caches its
tokenizations beside it. A prompt set (JSONL or CSV records with declared fields,
checked in `prompt_sets`) is stored normalized at datasets/<id>/items.jsonl and
referenced as `{"source": "prompt_set", "dataset": <id>}`.

The row and the file are made together: the upload is streamed, checked and
hashed into a temporary file under ARTIFACT_ROOT/datasets/.incoming/, then the
row is created and the file moved into place (or uploaded to the bucket) inside
one transaction; if anything fails, neither is left, and a bucket that cannot be
reached refuses the upload with ArtifactStorageUnavailable (a 503). (Called inside
an outer transaction that later rolls back, the file would stay as an orphan
folder with no row: harmless, and removed when a new upload gets that id.)
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import shutil
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from experiments.errors import ArtifactStorageUnavailable, DatasetInUse
from experiments.models import ACTIVE_RUN_STATUSES, Dataset, DatasetFormat, ExperimentRun
from experiments.services.prompt_sets import fields_clean, format_clean, records_write
from experiments.storage import artifact_root, artifact_storage, dataset_dir, dataset_files_delete, dataset_store
from ideas.text import has_visible_text, no_visible_text_message

log = logging.getLogger(__name__)

NAME_MAX = Dataset._meta.get_field("name").max_length
DESCRIPTION_MAX = 20_000
FILENAME_MAX = Dataset._meta.get_field("filename").max_length
STORED_NAME = "corpus.txt"
PROMPT_SET_NAME = "items.jsonl"
DATASET_SOURCES = frozenset({"text_corpus", "prompt_set"})  # the references of params that read an upload


@dataclass(frozen=True)
class TextStats:
    size: int
    sha256: str
    n_characters: int
    n_lines: int


def _too_large(max_bytes: int) -> str:
    limit = f"{max_bytes / 2**20:.3g} MiB" if max_bytes >= 2**20 else f"{max_bytes:,} bytes"
    return f"The file is larger than {limit}, the most a dataset may be (DATASET_MAX_BYTES)."


def _stream_text(chunks: Iterable[bytes], out, *, max_bytes: int) -> TextStats:
    """Write `chunks` to `out` while checking they are UTF-8 text without NUL, hashing and counting.

    Raises a ValidationError naming `file` at the first problem, saying where it is.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    digest = hashlib.sha256()
    size = n_characters = newlines = 0
    last_char = ""
    for chunk in chunks:
        if not chunk:
            continue
        pending = len(decoder.getstate()[0])  # bytes of a character split across the previous chunk's end
        if size + len(chunk) > max_bytes:
            raise ValidationError({"file": _too_large(max_bytes)})
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": _not_utf8(exc, size - pending, newlines)}) from None
        if "\x00" in text:
            line = newlines + text.count("\n", 0, text.index("\x00")) + 1
            raise ValidationError({"file": f"The file contains a NUL character (line {line}): it is not plain text."})
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
        n_characters += len(text)
        newlines += text.count("\n")
        last_char = text[-1:] or last_char
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": _not_utf8(exc, size - len(exc.object), newlines)}) from None
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    n_lines = newlines + (1 if last_char != "\n" else 0)
    return TextStats(size=size, sha256=digest.hexdigest(), n_characters=n_characters, n_lines=n_lines)


def _not_utf8(exc: UnicodeDecodeError, object_offset: int, newlines_before: int) -> str:
    """Where a decoding error is, in words: `object_offset` is the file offset of `exc.object[0]`."""
    offset = object_offset + exc.start
    line = newlines_before + exc.object.count(b"\n", 0, exc.start) + 1
    bad = exc.object[exc.start : exc.end].hex(" ")
    return (
        f"The file is not valid UTF-8 text at byte {offset} (line {line}): {exc.reason} ({bad}). "
        "Save it as UTF-8 and upload it again."
    )


def _chunks(uploaded_file: Any) -> Iterator[bytes]:
    """An uploaded file's bytes in chunks (Django's UploadedFile, or any binary file object)."""
    if hasattr(uploaded_file, "chunks"):
        yield from uploaded_file.chunks()
        return
    while chunk := uploaded_file.read(1 << 20):
        yield chunk


def _text_problem(text: str, limit: int) -> str | None:
    """Why `text` cannot be stored as a name or description, or None."""
    if len(text) > limit:
        return f"At most {limit:,} characters."
    if "\x00" in text:
        return "Contains a NUL character."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Contains characters that are not valid Unicode text."
    return None


def _clean_about(name: Any, description: Any) -> tuple[str, str, dict[str, list[str]]]:
    """The name (whitespace collapsed) and description (stripped), and the errors naming each."""
    name = " ".join(str(name or "").split())
    description = str(description or "").strip()
    errors = {}
    if not name:
        errors["name"] = ["A name is required."]
    elif not has_visible_text(name):
        errors["name"] = [no_visible_text_message("A name")]
    elif problem := _text_problem(name, NAME_MAX):
        errors["name"] = [problem]
    if problem := _text_problem(description, DESCRIPTION_MAX):
        errors["description"] = [problem]
    return name, description, errors


def _clean_filename(uploaded_file: Any) -> str:
    """The uploaded file's own name, without folders, control characters or lone surrogates, for display."""
    raw = Path(str(getattr(uploaded_file, "name", "") or "")).name
    return "".join(ch for ch in raw if unicodedata.category(ch) not in ("Cc", "Cs"))[-FILENAME_MAX:]


def _receive(uploaded_file: Any, incoming: Path) -> TextStats:
    """Stream the upload into `incoming`, checked (a ValidationError naming `file`)."""
    if uploaded_file is None:
        raise ValidationError({"file": "Choose a UTF-8 text file to upload."})
    max_bytes = settings.DATASET_MAX_BYTES
    declared = getattr(uploaded_file, "size", None)
    if declared is not None and declared > max_bytes:  # refuse before reading a byte
        raise ValidationError({"file": _too_large(max_bytes)})
    with incoming.open("wb") as out:
        return _stream_text(_chunks(uploaded_file), out, max_bytes=max_bytes)


def _received_format(uploaded_file: Any, raw_format: Any, raw_fields: Any) -> tuple[str, list[str], dict]:
    """The format and declared fields, and the errors naming `format` or `fields`."""
    try:
        dataset_format = format_clean(raw_format, str(getattr(uploaded_file, "name", "") or ""))
    except ValidationError as exc:
        return DatasetFormat.TEXT, [], exc.message_dict
    try:
        return dataset_format, fields_clean(raw_fields, dataset_format), {}
    except ValidationError as exc:
        return dataset_format, [], exc.message_dict


def dataset_upload(
    *, user, name: str, uploaded_file: Any, description: str = "", format: str | None = None, fields: Any = None
) -> Dataset:
    """Store an uploaded UTF-8 file as a dataset, a text corpus or a prompt set; signed-in users only.

    `format` is "text", "jsonl" or "csv"; when it is not given, the file name's extension decides (.jsonl, .csv,
    anything else text). A prompt set declares its `fields` (a list, or names separated by commas), which every
    record must have (see `prompt_sets`). Refused with a ValidationError naming `name`, `description`, `format`,
    `fields` or `file`: no name, an empty file, one larger than `DATASET_MAX_BYTES`, one that is not UTF-8 (the
    message gives the byte offset and line), one with NUL characters, or a prompt set whose records do not fit
    (the message gives the line and the field). Nothing is written when it is refused.
    """
    if not user or not user.is_authenticated:
        raise PermissionDenied("Sign in to upload a dataset.")
    name, description, errors = _clean_about(name, description)
    dataset_format, declared, format_errors = _received_format(uploaded_file, format, fields)
    errors.update(format_errors)

    incoming_dir = artifact_root() / "datasets" / ".incoming"
    incoming_dir.mkdir(parents=True, exist_ok=True)
    incoming = incoming_dir / f"{uuid.uuid4().hex}.part"
    items = incoming.with_suffix(".items")
    final: Path | None = None
    uploaded_id: int | None = None
    try:
        stats = n_records = None
        try:
            stats = _receive(uploaded_file, incoming)
            if dataset_format != DatasetFormat.TEXT and not format_errors:
                with items.open("w", encoding="utf-8") as out:
                    n_records = records_write(incoming, out, dataset_format=dataset_format, fields=declared)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if errors or stats is None:
            raise ValidationError(errors)
        stored, stored_name = (incoming, STORED_NAME) if n_records is None else (items, PROMPT_SET_NAME)
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name,
                description=description,
                filename=_clean_filename(uploaded_file),
                format=dataset_format,
                fields=declared,
                n_records=n_records,
                path="",
                size=stats.size,
                sha256=stats.sha256,
                n_characters=stats.n_characters,
                n_lines=stats.n_lines,
                uploaded_by=user,
            )
            if artifact_storage().is_local:
                folder = dataset_dir(dataset.pk)
                dataset.path = (folder / stored_name).relative_to(artifact_root()).as_posix()
                if folder.exists():  # left by an upload whose transaction rolled back: no row owns it
                    shutil.rmtree(folder)
                folder.mkdir(parents=True)
                final = folder / stored_name
                os.replace(stored, final)
            else:  # the bucket; the row is written only once it holds the file
                dataset.path = dataset_store(dataset_id=dataset.pk, source=stored, filename=stored_name)
                uploaded_id = dataset.pk
            dataset.save(update_fields=["path"])
        return dataset
    except BaseException:
        if final is not None:
            shutil.rmtree(final.parent, ignore_errors=True)
        if uploaded_id is not None:  # the row did not commit: its object goes too, where the bucket answers
            _forget_upload(uploaded_id)
        raise
    finally:
        incoming.unlink(missing_ok=True)
        items.unlink(missing_ok=True)


def _forget_upload(dataset_id: int) -> None:
    try:
        dataset_files_delete(dataset_id=dataset_id)
    except Exception as exc:  # left as an orphan, replaced by the next upload that gets this id
        log.warning("could not delete the files of dataset %s, whose row did not commit: %s", dataset_id, exc)


def user_can_delete_dataset(user, dataset: Dataset) -> bool:
    if not user or not user.is_authenticated:
        return False
    return user.is_staff or dataset.uploaded_by_id == user.pk


def _references(value: Any, dataset_id: int) -> bool:
    """Whether run params (JSON) name the dataset anywhere: `{"source": "text_corpus" or "prompt_set",
    "dataset": <id>}`."""
    if isinstance(value, dict):
        if value.get("source") in DATASET_SOURCES and value.get("dataset") == dataset_id:
            return True
        return any(_references(item, dataset_id) for item in value.values())
    if isinstance(value, list):
        return any(_references(item, dataset_id) for item in value)
    return False


def _runs_using(dataset: Dataset) -> list[int]:
    """Ids of the queued or running runs whose params reference the dataset."""
    active = ExperimentRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).values_list("pk", "params")
    return sorted(pk for pk, params in active if _references(params, dataset.pk))


def dataset_delete(*, dataset: Dataset, user) -> None:
    """Delete a dataset and its folder (the file and the engine's caches); its uploader or staff only.

    Refused with DatasetInUse while a queued or running run references it. Specs that name it stay, but
    can no longer be run (their params are checked again on each trigger). The files (the local folder, or the
    bucket's objects) are removed only once the row's deletion has committed: a deletion that fails or is rolled
    back leaves the dataset whole. A bucket that cannot be reached then leaves orphan objects, logged; nothing
    refers to them any more, so they are harmless and an operator may delete them.
    """
    if not user_can_delete_dataset(user, dataset):
        raise PermissionDenied("Only the person who uploaded the dataset or staff can delete it.")
    with transaction.atomic():
        using = _runs_using(dataset)
        if using:
            runs = ", ".join(str(pk) for pk in using)
            raise DatasetInUse(f"Dataset {dataset.pk} is in use by queued or running run(s) {runs}; wait or cancel.")
        dataset_id = dataset.pk
        dataset.delete()
        transaction.on_commit(lambda: _files_delete_after_commit(dataset_id))


def _files_delete_after_commit(dataset_id: int) -> None:
    try:
        dataset_files_delete(dataset_id=dataset_id)
    except ArtifactStorageUnavailable as exc:
        log.warning("dataset %s was deleted, but its files stay in the artifact storage: %s", dataset_id, exc)
