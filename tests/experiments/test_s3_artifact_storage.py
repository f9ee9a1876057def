"""ARTIFACT_STORAGE=s3 against an S3-compatible server on loopback: moto's standalone server, started once for
the session as a subprocess (never a cloud service).

Runs execute in-process (`run_execute`, the `no_broker` fixture); each test gets a bucket of its own and a fresh
ARTIFACT_ROOT, which with S3 is only a worker's scratch folder and cache. What is checked: a run's files land in
the bucket before its rows, downloads stream the bucket's bytes, a later run reads a checkpoint through the
worker cache, an uploaded dataset lives in the bucket and a run reads it, and a bucket that does not answer
re-queues the attempt (then fails the run) or answers 503, leaving nothing half stored.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from experiments.artifact_cache import CopyMismatch, cache_root, cached_copy
from experiments.errors import ArtifactStorageUnavailable
from experiments.models import Artifact, Dataset, RunStatus
from experiments.services import dataset_delete, dataset_upload, run_execute, run_trigger, spec_create
from experiments.storage import DatabaseArtifactResolver, DatabaseDatasetResolver, artifact_storage
from tests.api.conftest import client_for
from tests.factories import IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "lab"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}  # moto accepts any
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20
MODEL = {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "n_ctx": 16, "d_vocab": 32}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """http://127.0.0.1:<port> of a moto server this session started (skipped when moto is not installed)."""
    pytest.importorskip("moto.server", reason="needs moto[server] (requirements.txt) to stand in for S3")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            break
        except (urllib.error.URLError, OSError):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"moto server did not start:\n{log.read_text(errors='replace')}") from None
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(timeout=15)


def storage_settings(*, endpoint: str, bucket: str) -> dict:
    """STORAGES["artifacts"] as ARTIFACT_STORAGE=s3 makes it, with test credentials and quick failure."""
    return {
        "BACKEND": "experiments.storage_backends.s3.ArtifactS3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "location": PREFIX,
            "connect_timeout": 1,
            "read_timeout": 5,
            "max_attempts": 1,
            **CREDENTIALS,
        },
    }


@dataclass
class Bucket:
    name: str
    client: object

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", ()))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def bucket(moto_endpoint, no_broker, settings) -> Bucket:
    """A fresh bucket as the artifact storage; no_broker's fresh ARTIFACT_ROOT is the scratch folder and cache.

    The heartbeat is slower than any run here: its thread has a connection of its own, which cannot see this
    test's uncommitted run on PostgreSQL and would take the run for lost.
    """
    import boto3

    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    settings.ARTIFACT_STORAGE = "s3"
    settings.STORAGES = {**settings.STORAGES, "artifacts": storage_settings(endpoint=moto_endpoint, bucket=name)}
    settings.RUN_HEARTBEAT_SECONDS = 600
    return Bucket(name=name, client=client)


def storage_goes_down(settings) -> None:
    """Point the artifact storage at a loopback port nothing listens on: every request is refused."""
    artifacts = settings.STORAGES["artifacts"]
    options = {**artifacts["OPTIONS"], "endpoint_url": f"http://127.0.0.1:{_free_port()}"}
    settings.STORAGES = {**settings.STORAGES, "artifacts": {**artifacts, "OPTIONS": options}}


@pytest.fixture
def researcher(db):
    return UserFactory(username="researcher")


def train(user, **params):
    """A tiny training run, queued and executed in-process (20 steps, two checkpoints)."""
    spec_params = {"model": MODEL, "steps": 20, "batch_size": 4, "n_checkpoints": 2, "warmup_steps": 2} | params
    spec = spec_create(idea=IdeaFactory(), user=user, title="train", kind="train_transformer", params=spec_params)
    run = run_trigger(spec=spec, user=user).run
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


# --- a run's files -----------------------------------------------------------------------------


def test_a_run_stores_its_artifacts_in_the_bucket_and_downloads_stream_the_same_bytes(bucket, researcher, settings):
    run = train(researcher)
    assert run.status == RunStatus.SUCCEEDED, run.error
    artifacts = list(run.artifacts.all())
    assert len([a for a in artifacts if a.artifact_type == "checkpoint"]) == 2
    assert bucket.keys() == sorted(f"{PREFIX}/{a.path}" for a in artifacts)
    assert all(a.path.startswith(f"runs/{run.pk}/1/") for a in artifacts)
    assert not (settings.ARTIFACT_ROOT / "runs" / str(run.pk) / "1").exists()  # the scratch folder is gone

    checkpoint = next(a for a in artifacts if a.artifact_type == "checkpoint")
    stored = bucket.read(f"{PREFIX}/{checkpoint.path}")
    assert hashlib.sha256(stored).hexdigest() == checkpoint.sha256
    for url in (f"/api/runs/{run.pk}/artifacts/{checkpoint.name}/", f"/runs/{run.pk}/artifacts/{checkpoint.name}/"):
        response = client_for(researcher).get(url)
        assert response.status_code == 200, url
        assert response["Content-Length"] == str(len(stored))
        assert b"".join(response.streaming_content) == stored


def test_a_later_run_loads_the_checkpoint_through_the_worker_cache(bucket, researcher, settings):
    trained = train(researcher)
    assert trained.status == RunStatus.SUCCEEDED, trained.error
    checkpoint = trained.artifacts.filter(artifact_type="checkpoint").order_by("-name").first()
    params = {
        "model": {"source": "run", "run": trained.pk, "artifact": checkpoint.name},
        "data": {"source": "repeated_random_tokens", "n_sequences": 8, "half_length": 7},
    }
    spec = spec_create(idea=IdeaFactory(), user=researcher, title="heads", kind="head_detection", params=params)
    run = run_trigger(spec=spec, user=researcher).run
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error

    copy = DatabaseArtifactResolver().artifact_path(trained.pk, checkpoint.name)
    assert copy.is_relative_to(cache_root())
    assert copy.read_bytes() == bucket.read(f"{PREFIX}/{checkpoint.path}")
    bucket.client.delete_object(Bucket=bucket.name, Key=f"{PREFIX}/{checkpoint.path}")
    assert DatabaseArtifactResolver().artifact_path(trained.pk, checkpoint.name) == copy  # reused, not fetched


def test_a_copy_that_differs_from_its_row_is_refused_and_not_kept(bucket, researcher):
    trained = train(researcher)
    checkpoint = trained.artifacts.filter(artifact_type="checkpoint").first()
    Artifact.objects.filter(pk=checkpoint.pk).update(sha256="f" * 64)
    with pytest.raises(CopyMismatch, match="recorded sha256"):
        cached_copy(artifact_storage(), checkpoint.path, size=checkpoint.size, sha256="f" * 64)
    assert not [p for p in cache_root().rglob("*") if p.is_file()]  # neither the copy nor its partial file


# --- datasets ----------------------------------------------------------------------------------


def test_an_uploaded_dataset_lives_in_the_bucket_a_run_reads_it_and_deleting_removes_it(
    bucket, researcher, settings, django_capture_on_commit_callbacks
):
    dataset = dataset_upload(
        user=researcher, name="Speeches", uploaded_file=SimpleUploadedFile("speeches.txt", TEXT.encode())
    )
    assert dataset.path == f"datasets/{dataset.pk}/corpus.txt"
    assert bucket.keys() == [f"{PREFIX}/datasets/{dataset.pk}/corpus.txt"]
    assert bucket.read(f"{PREFIX}/{dataset.path}") == TEXT.encode()
    assert not (settings.ARTIFACT_ROOT / "datasets" / str(dataset.pk)).exists()  # not on the web server's disk

    run = train(researcher, data={"source": "text_corpus", "dataset": dataset.pk, "tokenizer": "char"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    copy = DatabaseDatasetResolver().dataset_path(dataset.pk)
    assert copy.is_relative_to(cache_root()) and copy.read_text() == TEXT
    assert any(p.name.endswith(".char.npy") for p in copy.parent.iterdir())  # tokenized once, beside the copy

    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=dataset, user=researcher)
    assert not Dataset.objects.exists()
    assert not [key for key in bucket.keys() if key.startswith(f"{PREFIX}/datasets/")]
    assert not copy.exists()


def test_a_dataset_whose_row_is_not_deleted_keeps_its_objects(
    bucket, researcher, monkeypatch, django_capture_on_commit_callbacks
):
    from django.db import OperationalError

    dataset = dataset_upload(user=researcher, name="Speeches", uploaded_file=SimpleUploadedFile("s.txt", TEXT.encode()))

    def refuse(*args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(Dataset, "delete", refuse)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(OperationalError):
        dataset_delete(dataset=dataset, user=researcher)
    assert bucket.keys() == [f"{PREFIX}/datasets/{dataset.pk}/corpus.txt"]  # the row still needs them


def test_a_dataset_deleted_while_the_bucket_is_down_is_gone_its_objects_left_and_logged(
    bucket, researcher, settings, caplog, django_capture_on_commit_callbacks
):
    dataset = dataset_upload(user=researcher, name="Speeches", uploaded_file=SimpleUploadedFile("s.txt", TEXT.encode()))
    pk = dataset.pk
    storage_goes_down(settings)
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=dataset, user=researcher)
    assert not Dataset.objects.exists()
    assert bucket.keys() == [f"{PREFIX}/datasets/{pk}/corpus.txt"]  # an orphan: nothing refers to it
    assert f"dataset {pk} was deleted, but its files stay" in caplog.text


def test_an_upload_while_the_bucket_is_down_is_a_503_and_stores_nothing(bucket, researcher, settings, caplog):
    storage_goes_down(settings)
    body = {"name": "Hamlet", "file": SimpleUploadedFile("hamlet.txt", TEXT.encode(), "text/plain")}
    response = client_for(researcher).post("/api/datasets/", body, format="multipart")
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "artifact_storage_unavailable"
    # Where the storage is and what the client said go to the log, not to whoever made the request.
    assert response.json()["detail"] == "The artifact storage is unavailable for a moment. Please try again shortly."
    assert bucket.name in caplog.text
    assert response["Retry-After"]
    assert not Dataset.objects.exists()


# --- the bucket down ---------------------------------------------------------------------------


def test_a_bucket_down_re_queues_the_attempt_naming_it_then_fails_the_run_after_the_last(
    bucket, researcher, settings, no_broker
):
    settings.RUN_MAX_ATTEMPTS = 2
    settings.ARTIFACT_UPLOAD_RETRY_SECONDS = 1.5  # tries, waits 1 s, tries again, then gives the attempt up
    storage_goes_down(settings)
    run = train(researcher)
    assert run.status == RunStatus.QUEUED
    assert run.error.startswith("Attempt 1 lost: Could not store run")
    assert bucket.name in run.error and "could not be reached" in run.error
    assert no_broker == [run.pk]  # sent again at once (the trigger's own message waits for a commit here)
    assert not run.artifacts.exists()

    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "attempt 2 of 2; giving up" in run.error and bucket.name in run.error
    assert no_broker == [run.pk]
    assert not run.artifacts.exists() and not bucket.keys()
    assert not list((settings.ARTIFACT_ROOT / "runs").rglob("*.safetensors"))  # no scratch left behind either


def test_a_bucket_back_within_the_retry_window_keeps_the_finished_attempt(bucket, researcher, settings, monkeypatch):
    from experiments.services import runs

    settings.ARTIFACT_UPLOAD_RETRY_SECONDS = 60
    reachable = settings.STORAGES
    storage_goes_down(settings)
    pauses = []

    def pause_while_the_bucket_comes_back(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            settings.STORAGES = reachable

    monkeypatch.setattr(runs, "_pause_before_upload_retry", pause_while_the_bucket_comes_back)
    run = train(researcher)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 1 and pauses == [1.0, 2.0]  # backing off
    assert bucket.keys() == sorted(f"{PREFIX}/{a.path}" for a in run.artifacts.all())
    assert all(a.path.startswith(f"runs/{run.pk}/1/") for a in run.artifacts.all())


def test_a_checkpoint_the_bucket_cannot_serve_re_queues_the_reading_attempt(bucket, researcher, settings, no_broker):
    trained = train(researcher)
    checkpoint = trained.artifacts.filter(artifact_type="checkpoint").first()
    params = {
        "model": {"source": "run", "run": trained.pk, "artifact": checkpoint.name},
        "data": {"source": "repeated_random_tokens", "n_sequences": 8, "half_length": 7},
    }
    spec = spec_create(idea=IdeaFactory(), user=researcher, title="heads", kind="head_detection", params=params)
    run = run_trigger(spec=spec, user=researcher).run
    shutil.rmtree(cache_root())  # the checks before queueing fetched it on this (web) machine; the worker has none
    storage_goes_down(settings)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert f"Attempt 1 lost: Could not read run {trained.pk}'s artifact {checkpoint.name!r}" in run.error
    assert no_broker == [run.pk]


def test_a_download_while_the_bucket_is_down_is_a_503_not_a_server_error(bucket, researcher, settings, client):
    run = train(researcher)
    name = run.artifacts.first().name
    storage_goes_down(settings)
    response = client_for(researcher).get(f"/api/runs/{run.pk}/artifacts/{name}/")
    assert response.status_code == 503
    assert response.json()["code"] == "artifact_storage_unavailable"
    assert bucket.name not in response.content.decode() and "127.0.0.1" not in response.content.decode()
    page = client.get(f"/runs/{run.pk}/artifacts/{name}/")  # anyone may open a run's files
    assert page.status_code == 503
    text = page.content.decode()
    assert "The artifact storage is unavailable for a moment." in text
    assert bucket.name not in text and f"{PREFIX}/" not in text and "127.0.0.1" not in text


def test_a_missing_object_is_a_404_download_and_a_clear_reference_error(bucket, researcher):
    run = train(researcher)
    checkpoint = run.artifacts.filter(artifact_type="checkpoint").first()
    bucket.client.delete_object(Bucket=bucket.name, Key=f"{PREFIX}/{checkpoint.path}")
    assert client_for(researcher).get(f"/api/runs/{run.pk}/artifacts/{checkpoint.name}/").status_code == 404
    from experiments.engine.errors import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match="not in the artifact storage"):
        DatabaseArtifactResolver().artifact_path(run.pk, checkpoint.name)


def test_with_local_storage_the_scratch_folder_is_the_store(no_broker, researcher, settings):
    settings.RUN_HEARTBEAT_SECONDS = 600
    run = train(researcher)
    assert run.status == RunStatus.SUCCEEDED, run.error
    checkpoint = run.artifacts.filter(artifact_type="checkpoint").first()
    assert (settings.ARTIFACT_ROOT / checkpoint.path).is_file()
    assert (
        DatabaseArtifactResolver().artifact_path(run.pk, checkpoint.name)
        == (settings.ARTIFACT_ROOT / checkpoint.path).resolve()
    )
    assert not (settings.ARTIFACT_ROOT / "cache").exists()


# --- how the backend fails -----------------------------------------------------------------------


class _Answers500(http.server.BaseHTTPRequestHandler):
    def _fail(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _fail

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def endpoints():
    """A refusing port, a server answering 500 to everything, and one that takes connections but never answers."""
    failing = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers500)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    yield {
        "refused": f"http://127.0.0.1:{_free_port()}",
        "5xx": f"http://127.0.0.1:{failing.server_address[1]}",
        "timeout": f"http://127.0.0.1:{silent.getsockname()[1]}",
    }
    failing.shutdown()
    failing.server_close()
    silent.close()


@pytest.mark.parametrize("fault", ["refused", "5xx", "timeout"])
def test_every_kind_of_unreachable_bucket_is_one_error_naming_it_and_the_file(endpoints, fault, tmp_path):
    from experiments.storage_backends.s3 import ArtifactS3Storage

    options = storage_settings(endpoint=endpoints[fault], bucket="lab-artifacts")["OPTIONS"] | {"read_timeout": 1}
    storage = ArtifactS3Storage(**options)
    source = tmp_path / "scores.json"
    source.write_text("{}")
    with pytest.raises(ArtifactStorageUnavailable) as caught:
        storage.put_file(source, "runs/7/1/scores.json", content_type="application/json")
    assert "S3 bucket 'lab-artifacts'" in str(caught.value) and "runs/7/1/scores.json" in str(caught.value)
    with pytest.raises(ArtifactStorageUnavailable):
        storage.download_to("runs/7/1/scores.json", tmp_path / "copy.json")


# --- settings --------------------------------------------------------------------------------------


def _settings_with(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARTIFACT_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-c", "import json, config.settings as s; print(json.dumps(s.STORAGES['artifacts']))"],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_build_the_s3_backend_from_the_environment_and_refuse_what_cannot_work():
    local = _settings_with()
    assert json.loads(local.stdout)["BACKEND"].endswith("ArtifactFileSystemStorage"), local.stderr
    s3 = _settings_with(
        ARTIFACT_STORAGE="s3",
        ARTIFACT_S3_BUCKET="lab",
        ARTIFACT_S3_ENDPOINT_URL="http://minio.lab:9000",
        ARTIFACT_S3_PREFIX="/ideas/",
    )
    options = json.loads(s3.stdout)["OPTIONS"]
    assert options["bucket_name"] == "lab" and options["location"] == "ideas" and options["region_name"] is None
    assert options["endpoint_url"] == "http://minio.lab:9000"
    from experiments.storage_backends.s3 import ArtifactS3Storage

    assert ArtifactS3Storage(**options).describe() == (
        "the artifact storage (S3 bucket 'lab' at http://minio.lab:9000 under ideas/)"
    )
    assert "needs ARTIFACT_S3_BUCKET" in _settings_with(ARTIFACT_STORAGE="s3").stderr
    assert "must be local or s3" in _settings_with(ARTIFACT_STORAGE="nfs").stderr
