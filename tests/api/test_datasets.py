"""Datasets through the API: multipart upload (and its errors), list, detail, delete, permissions, throttling."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.throttles import WriteThrottle
from experiments.models import Dataset
from experiments.services import dataset_upload, run_trigger, spec_create
from experiments.storage import artifact_file, dataset_dir
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

pytestmark = pytest.mark.django_db

TEXT = b"To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
DATASET_FIELDS = {
    "id", "name", "description", "filename", "format", "fields", "n_records", "size", "sha256", "n_characters",
    "n_lines", "uploaded_by", "created_at", "reference", "can_delete",
}  # fmt: skip


@pytest.fixture(autouse=True)
def artifact_root(no_broker, settings):
    """Files go under no_broker's fresh ARTIFACT_ROOT; triggered runs stay queued."""
    return settings.ARTIFACT_ROOT


def text_file(content: bytes = TEXT, name: str = "hamlet.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, "text/plain")


@pytest.fixture
def dataset(author) -> Dataset:
    """A dataset the author uploaded."""
    return dataset_upload(user=author, name="Hamlet", uploaded_file=text_file())


def post_upload(client, content: bytes = TEXT, **fields):
    body = {"name": "Hamlet", "description": "Act 3.", "file": text_file(content), **fields}
    return client.post("/api/datasets/", body, format="multipart")


# --- upload ------------------------------------------------------------------------------------


def test_upload_is_a_201_with_the_dataset_and_how_to_reference_it(user, artifact_root):
    response = post_upload(client_for(user))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == DATASET_FIELDS
    dataset = Dataset.objects.get()
    assert body["id"] == dataset.pk
    assert body["name"] == "Hamlet"
    assert body["description"] == "Act 3."
    assert body["filename"] == "hamlet.txt"
    assert body["size"] == len(TEXT)
    assert body["sha256"] == hashlib.sha256(TEXT).hexdigest()
    assert body["n_lines"] == 2
    assert body["uploaded_by"] == user.username
    assert body["reference"] == {"source": "text_corpus", "dataset": dataset.pk}
    assert body["can_delete"] is True
    assert artifact_file(dataset.path).read_bytes() == TEXT


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"caf\xe9 latin-1\n", "not valid UTF-8"),
        (b"text\x00with NUL\n", "NUL"),
    ],
    ids=["empty", "not-utf8", "nul"],
)
def test_a_bad_file_is_a_400_naming_file(user, artifact_root, content, words):
    body = assert_error(post_upload(client_for(user), content), 400, field="file", code="invalid")
    assert words in body["errors"]["file"][0]
    assert not Dataset.objects.exists()
    assert not [p for p in artifact_root.rglob("*") if p.is_file()]


def test_a_file_over_the_limit_is_a_400_naming_file(user, settings):
    settings.DATASET_MAX_BYTES = 10
    body = assert_error(post_upload(client_for(user), b"0123456789A"), 400, field="file")
    assert "larger than 10 bytes" in body["errors"]["file"][0]


def test_the_bad_utf8_message_names_the_line(user):
    body = assert_error(post_upload(client_for(user), b"fine\nalso fine\n\xff\n"), 400, field="file")
    assert "line 3" in body["errors"]["file"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"file": ""}, "file")],
    ids=["no-name", "long-name", "no-file"],
)
def test_missing_or_bad_fields_are_a_400_naming_them(user, fields, field):
    assert_error(post_upload(client_for(user), **fields), 400, field=field)


def test_a_json_body_is_a_415(user):
    response = client_for(user).post("/api/datasets/", {"name": "x"}, format="json")
    assert_error(response, 415, code="unsupported_media_type")


def test_anonymous_upload_is_a_401(anon_client):
    assert_error(post_upload(anon_client), 401, code="not_authenticated")
    assert not Dataset.objects.exists()


def test_uploads_are_write_throttled(user, monkeypatch):
    monkeypatch.setattr(WriteThrottle, "rate", "1/min")
    client = client_for(user)
    assert post_upload(client).status_code == 201
    response = post_upload(client)
    assert_error(response, 429, code="throttled")
    assert int(response["Retry-After"]) > 0
    assert client.get("/api/datasets/").status_code == 200  # reads do not count


# --- reading -----------------------------------------------------------------------------------


def test_anyone_lists_datasets_newest_first_in_pages(anon_client, dataset, author):
    newer = dataset_upload(user=author, name="Macbeth", uploaded_file=text_file(b"Out, damned spot!\n"))
    body = anon_client.get("/api/datasets/", {"page_size": 1}).json()
    assert body["count"] == 2
    assert [d["id"] for d in body["results"]] == [newer.pk]
    assert body["results"][0]["can_delete"] is False
    assert body["next"]


def test_an_unknown_query_parameter_is_a_400(anon_client):
    assert_error(anon_client.get("/api/datasets/", {"sort": "size"}), 400, field="sort")


def test_anyone_reads_one_dataset_and_a_missing_one_is_a_404(anon_client, dataset):
    body = anon_client.get(f"/api/datasets/{dataset.pk}/").json()
    assert body["name"] == "Hamlet"
    assert body["reference"] == {"source": "text_corpus", "dataset": dataset.pk}
    assert_error(anon_client.get(f"/api/datasets/{dataset.pk + 1}/"), 404, code="not_found")


# --- delete ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("user", 403), ("author", 204), ("staff", 204)],
)
def test_delete_permissions(clients, dataset, role, status, django_capture_on_commit_callbacks):
    folder = dataset_dir(dataset.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = clients[role].delete(f"/api/datasets/{dataset.pk}/")
    assert response.status_code == status, response.content
    deleted = status == 204
    assert Dataset.objects.filter(pk=dataset.pk).exists() is not deleted
    assert folder.exists() is not deleted


def test_can_delete_says_who_may(clients, dataset):
    answers = {role: clients[role].get(f"/api/datasets/{dataset.pk}/").json()["can_delete"] for role in clients}
    assert answers == {"anonymous": False, "user": False, "author": True, "staff": True}


def test_deleting_a_dataset_a_queued_run_reads_is_a_409_naming_the_run(author, dataset):
    params = {
        "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "n_ctx": 16, "d_vocab": 128},
        "data": {"source": "text_corpus", "dataset": dataset.pk, "tokenizer": "char"},
        "steps": 5,
    }
    spec = spec_create(idea=IdeaFactory(), user=author, title="train", kind="train_transformer", params=params)
    run = run_trigger(spec=spec, user=author).run
    body = assert_error(client_for(author).delete(f"/api/datasets/{dataset.pk}/"), 409, code="conflict")
    assert str(run.pk) in body["detail"]
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_a_spec_naming_a_missing_dataset_is_a_400_naming_the_field(user):
    params = {"data": {"source": "text_corpus", "dataset": 4242, "tokenizer": "char"}}
    idea = IdeaFactory()
    body = {"idea": idea.pk, "title": "train", "kind": "train_transformer", "params": params}
    response = client_for(user).post("/api/experiments/", body, format="json")
    errors = assert_error(response, 400, field="params.data.dataset")["errors"]
    assert "There is no dataset 4242" in errors["params.data.dataset"][0]


def test_deleting_a_missing_dataset_is_a_404(staff):
    assert_error(client_for(staff).delete("/api/datasets/999/"), 404)


def test_the_schema_documents_the_multipart_upload_and_the_409(anon_client):
    paths = anon_client.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert set(paths["/api/datasets/"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}
    assert "409" in paths["/api/datasets/{id}/"]["delete"]["responses"]


# --- prompt sets -------------------------------------------------------------------------------

STATEMENTS = b'{"statement": "Snow is cold.", "label": "true"}\n{"statement": "Snow is hot.", "label": false}\n'


def post_prompt_set(client, content: bytes = STATEMENTS, filename: str = "statements.jsonl", **fields):
    body = {"name": "Statements", "file": SimpleUploadedFile(filename, content), **fields}
    return client.post("/api/datasets/", body, format="multipart")


def test_a_jsonl_prompt_set_is_a_201_with_its_format_fields_and_records(user):
    response = post_prompt_set(client_for(user), fields="statement,label")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == DATASET_FIELDS
    assert (body["format"], body["fields"], body["n_records"]) == ("jsonl", ["statement", "label"], 2)
    assert body["reference"] == {"source": "prompt_set", "dataset": body["id"]}
    assert body["sha256"] == hashlib.sha256(STATEMENTS).hexdigest()


def test_a_csv_prompt_set_takes_its_fields_as_repeated_parts(user):
    content = b"action,category\nborrow a pen,benign\nread a diary,dubious\n"
    response = post_prompt_set(client_for(user), content, "actions.csv", format="csv", fields=["action", "category"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["format"], body["fields"], body["n_records"]) == ("csv", ["action", "category"], 2)


def test_a_text_dataset_shows_no_fields_or_records(anon_client, dataset):
    body = anon_client.get(f"/api/datasets/{dataset.pk}/").json()
    assert (body["format"], body["fields"], body["n_records"]) == ("text", [], None)


def test_a_record_without_a_declared_field_is_a_400_naming_file_line_and_field(user, artifact_root):
    content = STATEMENTS + b'{"statement": "Ice is frozen water."}\n'
    body = assert_error(post_prompt_set(client_for(user), content, fields="statement, label"), 400, field="file")
    assert body["errors"]["file"] == ["line 3: the record has no 'label'."]
    assert not Dataset.objects.exists()
    assert not [p for p in artifact_root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({}, "fields"), ({"fields": "Label"}, "fields"), ({"format": "xml", "fields": "label"}, "format")],
    ids=["no-fields", "bad-name", "bad-format"],
)
def test_bad_fields_or_format_are_a_400_naming_them(user, fields, field):
    assert_error(post_prompt_set(client_for(user), **fields), 400, field=field)
    assert not Dataset.objects.exists()
