"""Uploaded text datasets: the upload and delete services, the resolver, spec checks, a training run on one,
and the /datasets/ page.

No broker (the `no_broker` fixture), and runs execute in-process with `run_execute`.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from experiments.engine.datasets import DatasetNotAvailable
from experiments.errors import DatasetInUse
from experiments.models import Dataset, RunStatus
from experiments.services import dataset_delete, dataset_upload, run_execute, run_trigger, spec_create
from experiments.storage import DatabaseDatasetResolver, artifact_file, dataset_dir
from tests.factories import IdeaFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


@pytest.fixture(autouse=True)
def slow_heartbeat(no_broker, settings):
    """The shared no_broker (a fresh ARTIFACT_ROOT, nothing sent), with a heartbeat slower than any run here.

    The heartbeat thread has a connection of its own, which cannot see this test's uncommitted run
    (on PostgreSQL): it would take the run for lost. A training run takes longer than the default
    beat, so the beat is set beyond the run's length (the thread stops at once when the run ends).
    """
    settings.RUN_HEARTBEAT_SECONDS = 600
    return no_broker


@pytest.fixture
def uploader(db):
    return UserFactory(username="uploader")


def text_file(content: bytes | str = TEXT, name: str = "shakespeare.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content, "text/plain")


def upload(user, content: bytes | str = TEXT, *, name: str = "Tiny Shakespeare", **kwargs) -> Dataset:
    return dataset_upload(user=user, name=name, uploaded_file=text_file(content), **kwargs)


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- upload ------------------------------------------------------------------------------------


def test_upload_stores_the_row_and_the_file_with_its_hash_and_counts(uploader, tmp_path):
    dataset = upload(uploader, description="  Two speeches.  ")

    data = TEXT.encode()
    assert dataset.name == "Tiny Shakespeare"
    assert dataset.description == "Two speeches."
    assert dataset.filename == "shakespeare.txt"
    assert dataset.uploaded_by == uploader
    assert dataset.size == len(data)
    assert dataset.sha256 == hashlib.sha256(data).hexdigest()
    assert dataset.n_characters == len(TEXT)
    assert dataset.n_lines == TEXT.count("\n")
    assert dataset.path == f"datasets/{dataset.pk}/corpus.txt"
    assert artifact_file(dataset.path).read_bytes() == data
    assert files_under(tmp_path) == [f"datasets/{dataset.pk}/corpus.txt"]  # the temporary file is gone
    assert dataset.reference == {"source": "text_corpus", "dataset": dataset.pk}


def test_upload_counts_characters_not_bytes_and_a_last_line_without_newline(uploader):
    text = "naïve café\n日本語のテキスト\nno newline at the end"
    dataset = upload(uploader, text)
    assert dataset.size == len(text.encode())
    assert dataset.n_characters == len(text)
    assert dataset.n_lines == 3


def test_upload_decodes_characters_split_across_chunks(uploader, settings):
    """Streaming reads chunks; a multi-byte character cut in two by a chunk boundary is still valid."""
    text = "é" * 100_000 + "\n"  # 200,001 bytes: Django's 64 KiB chunks cut characters in half
    upload_file = SimpleUploadedFile("accents.txt", text.encode())
    upload_file.DEFAULT_CHUNK_SIZE = 65_537  # an odd chunk size guarantees a split
    dataset = dataset_upload(user=uploader, name="accents", uploaded_file=upload_file)
    assert dataset.n_characters == len(text)
    assert dataset.n_lines == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"line one\nline two\nbad \xff byte\n", "line 3"),
        (b"fine\nthen a NUL\x00 here\n", "NUL"),
        (b"truncated at the end \xe2\x82", "UTF-8"),
    ],
    ids=["empty", "not-utf8", "nul", "truncated-utf8"],
)
def test_upload_refuses_files_that_are_not_text_naming_file_and_writing_nothing(uploader, tmp_path, content, words):
    with pytest.raises(ValidationError) as caught:
        upload(uploader, content)
    assert list(caught.value.message_dict) == ["file"]
    assert words in caught.value.message_dict["file"][0]
    assert not Dataset.objects.exists()
    assert files_under(tmp_path) == []


def test_upload_names_the_byte_offset_and_line_of_bad_utf8(uploader):
    with pytest.raises(ValidationError) as caught:
        upload(uploader, b"ok\nok\nab\xc3\x28cd\n")
    message = caught.value.message_dict["file"][0]
    assert "byte 8" in message
    assert "line 3" in message


def test_upload_refuses_a_file_over_the_size_limit(uploader, settings, tmp_path):
    settings.DATASET_MAX_BYTES = 100
    with pytest.raises(ValidationError) as caught:
        upload(uploader, "x" * 101)
    assert "larger than 100 bytes" in caught.value.message_dict["file"][0]
    assert files_under(tmp_path) == []
    assert upload(uploader, "x" * 100).size == 100  # the limit itself is allowed


def test_upload_refuses_a_file_over_the_limit_while_streaming_when_its_size_is_unknown(uploader, settings, tmp_path):
    settings.DATASET_MAX_BYTES = 1000
    with pytest.raises(ValidationError) as caught:
        dataset_upload(user=uploader, name="stream", uploaded_file=io.BytesIO(b"y" * 5000))
    assert "file" in caught.value.message_dict
    assert files_under(tmp_path) == []


def test_upload_names_every_bad_field_at_once(uploader):
    with pytest.raises(ValidationError) as caught:
        dataset_upload(user=uploader, name="   ", uploaded_file=text_file(b""), description="x\x00")
    assert set(caught.value.message_dict) == {"name", "description", "file"}


def test_upload_needs_a_signed_in_user(tmp_path):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        upload(AnonymousUser())
    assert files_under(tmp_path) == []


def test_upload_leaves_nothing_when_moving_the_file_fails(uploader, tmp_path, monkeypatch):
    from experiments.services import datasets as datasets_module

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(datasets_module.os, "replace", broken_replace)
    with pytest.raises(OSError):
        upload(uploader)
    assert not Dataset.objects.exists()
    assert files_under(tmp_path) == []


# --- delete ------------------------------------------------------------------------------------


def test_delete_by_the_uploader_removes_the_row_and_the_folder(uploader, django_capture_on_commit_callbacks):
    dataset = upload(uploader)
    folder = dataset_dir(dataset.pk)
    (folder / "corpus.txt.abc.char.npy").write_bytes(b"cache")
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=dataset, user=uploader)
    assert not Dataset.objects.exists()
    assert not folder.exists()


def test_delete_by_staff_but_not_by_another_user(uploader):
    dataset = upload(uploader)
    with pytest.raises(PermissionDenied):
        dataset_delete(dataset=dataset, user=UserFactory())
    dataset_delete(dataset=dataset, user=StaffFactory())
    assert not Dataset.objects.exists()


def test_delete_is_refused_while_a_queued_run_reads_the_dataset(uploader):
    dataset = upload(uploader)
    spec = spec_create(
        idea=IdeaFactory(), user=uploader, title="train", kind="train_transformer", params=tiny_training(dataset.pk)
    )
    run = run_trigger(spec=spec, user=uploader).run
    with pytest.raises(DatasetInUse) as caught:
        dataset_delete(dataset=dataset, user=uploader)
    assert str(run.pk) in caught.value.messages[0]
    assert Dataset.objects.filter(pk=dataset.pk).exists()


# --- resolver and specs ------------------------------------------------------------------------


def test_resolver_finds_the_file_and_explains_a_missing_row_or_file(uploader):
    dataset = upload(uploader)
    resolver = DatabaseDatasetResolver()
    assert resolver.dataset_path(dataset.pk).read_text() == TEXT
    with pytest.raises(DatasetNotAvailable, match=f"no dataset {dataset.pk + 1}"):
        resolver.dataset_path(dataset.pk + 1)
    artifact_file(dataset.path).unlink()
    with pytest.raises(DatasetNotAvailable, match=r"file .* is missing"):
        resolver.dataset_path(dataset.pk)


def tiny_training(dataset_id: int) -> dict:
    return {
        "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "n_ctx": 16, "d_vocab": 128},
        "data": {"source": "text_corpus", "dataset": dataset_id, "tokenizer": "char"},
        "steps": 20,
        "batch_size": 4,
        "n_checkpoints": 2,
        "warmup_steps": 2,
    }


def test_a_spec_naming_a_missing_dataset_is_refused_naming_the_field(uploader):
    with pytest.raises(ValidationError) as caught:
        spec_create(
            idea=IdeaFactory(), user=uploader, title="train", kind="train_transformer", params=tiny_training(999)
        )
    assert list(caught.value.message_dict) == ["params.data.dataset"]
    assert "There is no dataset 999" in caught.value.message_dict["params.data.dataset"][0]


def test_training_on_an_uploaded_dataset_succeeds_and_caches_the_tokenization(uploader):
    dataset = upload(uploader)
    spec = spec_create(
        idea=IdeaFactory(), user=uploader, title="train", kind="train_transformer", params=tiny_training(dataset.pk)
    )
    run = run_trigger(spec=spec, user=uploader).run
    run = run_execute(run_id=run.pk)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.metrics["n_checkpoints"] == 2
    assert run.series["loss"]
    cached = [p.name for p in dataset_dir(dataset.pk).iterdir() if p.name != "corpus.txt"]
    assert any(name.endswith(".char.npy") for name in cached), cached
    assert any(name.endswith(".char.json") for name in cached), cached


def test_a_queued_run_whose_dataset_was_deleted_fails_saying_so(uploader):
    dataset = upload(uploader)
    spec = spec_create(
        idea=IdeaFactory(), user=uploader, title="train", kind="train_transformer", params=tiny_training(dataset.pk)
    )
    run = run_trigger(spec=spec, user=uploader).run
    Dataset.objects.filter(pk=dataset.pk).delete()  # behind the service's back (an admin, a database restore)
    run_execute(run_id=run.pk)
    run.refresh_from_db()  # run_execute returns this path's run without re-reading it
    assert run.status == RunStatus.FAILED
    assert f"There is no dataset {dataset.pk}" in run.error


# --- the page ----------------------------------------------------------------------------------


def test_the_page_lists_datasets_with_size_lines_uploader_and_reference(client, uploader):
    dataset = upload(uploader)
    response = client.get(reverse("dataset-list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Tiny Shakespeare" in html
    assert "uploader" in html
    assert f"{dataset.n_lines:,}" in html
    assert f"{dataset.n_characters:,}" in html
    assert json.dumps({"source": "text_corpus", "dataset": dataset.pk}).replace('"', "&quot;") in html
    assert "Log in</a> to upload" in html
    assert 'href="/datasets/"' in html  # the header links to it


def test_uploading_on_the_page_creates_the_dataset_and_redirects_to_it(client, uploader):
    client.force_login(uploader)
    response = client.post(reverse("dataset-list"), {"name": "Speeches", "description": "", "file": text_file()})
    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/#dataset-{dataset.pk}"
    page = client.get(response["Location"]).content.decode()
    assert f"Uploaded dataset {dataset.pk}" in page


def test_a_bad_upload_on_the_page_is_a_400_with_the_message_next_to_the_file(client, uploader):
    client.force_login(uploader)
    response = client.post(reverse("dataset-list"), {"name": "Binary", "file": text_file(b"\x89PNG\r\n\x1a\n\x00")})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_file_error"' in html
    assert "not valid UTF-8" in html
    assert not Dataset.objects.exists()


def test_anonymous_upload_on_the_page_is_sent_to_log_in(client):
    response = client.post(reverse("dataset-list"), {"name": "x", "file": text_file()})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Dataset.objects.exists()


def test_deleting_on_the_page_uploader_only(client, uploader):
    dataset = upload(uploader)
    client.force_login(UserFactory())
    assert client.post(reverse("dataset-delete", args=[dataset.pk])).status_code == 403
    client.force_login(uploader)
    response = client.post(reverse("dataset-delete", args=[dataset.pk]))
    assert response.status_code == 302
    assert not Dataset.objects.exists()
