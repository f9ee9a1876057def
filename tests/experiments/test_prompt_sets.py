"""Prompt sets uploaded as datasets: the upload service's checks (each refusal names the line and the field, and
leaves nothing), the normalized items.jsonl, the resolver, the engine's `load_items` on an upload, the references
of the wrong type, deleting a set in use, and the /datasets/ page."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from experiments.engine.datasets import DatasetNotAvailable
from experiments.engine.evals.prompt_sets import SHIPPED, PromptSetProblem, PromptSetRef, PromptSource, load_items
from experiments.engine.params import KindParams
from experiments.errors import DatasetInUse
from experiments.models import Dataset, ExperimentRun, RunStatus
from experiments.services import dataset_delete, dataset_upload, spec_create
from experiments.services.datasets import _references
from experiments.services.specs import _model_reference_errors
from experiments.storage import DatabaseDatasetResolver, artifact_file
from tests.factories import ExperimentRunFactory, IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db

JSONL = (
    '{"statement": "Water boils at 100 degrees Celsius at sea level.", "label": true, "source": "school"}\n'
    "\n"
    '{"statement": "The Sun orbits the Earth.", "label": false, "difficulty": 1}\n'
)
CSV = '\ufeffstatement,label,category\nSnow is cold.,true,everyday\n"Two plus two equals five.",false,arithmetic\n'


@pytest.fixture(autouse=True)
def artifact_root(no_broker, settings):
    return settings.ARTIFACT_ROOT


@pytest.fixture
def uploader(db):
    return UserFactory(username="uploader")


def a_file(content: str | bytes, name: str = "statements.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def upload_set(user, content: str | bytes = JSONL, *, name: str = "statements.jsonl", **kwargs) -> Dataset:
    kwargs.setdefault("fields", "statement, label")
    return dataset_upload(user=user, name="Statements", uploaded_file=a_file(content, name), **kwargs)


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def stored_records(dataset: Dataset) -> list[dict]:
    return [json.loads(line) for line in artifact_file(dataset.path).read_text().splitlines()]


# --- upload ------------------------------------------------------------------------------------


def test_a_jsonl_set_is_stored_normalized_with_its_fields_count_and_hash(uploader, artifact_root):
    dataset = upload_set(uploader)

    assert dataset.format == "jsonl"  # from the file name
    assert dataset.fields == ["statement", "label"]
    assert dataset.n_records == 2
    assert dataset.sha256 == hashlib.sha256(JSONL.encode()).hexdigest()  # of the uploaded bytes
    assert dataset.size == len(JSONL.encode())
    assert dataset.path == f"datasets/{dataset.pk}/items.jsonl"
    assert dataset.reference == {"source": "prompt_set", "dataset": dataset.pk}
    assert stored_records(dataset) == [
        {"statement": "Water boils at 100 degrees Celsius at sea level.", "label": "true", "source": "school"},
        {"statement": "The Sun orbits the Earth.", "label": "false", "difficulty": "1"},  # extras kept, as strings
    ]
    assert files_under(artifact_root) == [f"datasets/{dataset.pk}/items.jsonl"]


def test_a_csv_set_with_a_byte_order_mark_is_read_by_its_header(uploader):
    dataset = upload_set(uploader, CSV, name="statements.csv", fields=["statement", "label"])
    assert dataset.format == "csv"
    assert dataset.n_records == 2
    assert stored_records(dataset) == [
        {"statement": "Snow is cold.", "label": "true", "category": "everyday"},
        {"statement": "Two plus two equals five.", "label": "false", "category": "arithmetic"},
    ]


def test_the_format_given_wins_over_the_extension_and_a_text_file_stays_text(uploader):
    dataset = upload_set(uploader, JSONL, name="statements.txt", format="jsonl")
    assert dataset.format == "jsonl"
    text = dataset_upload(user=uploader, name="corpus", uploaded_file=a_file("Some text.\n", "corpus.txt"))
    assert (text.format, text.fields, text.n_records) == ("text", [], None)
    assert text.path.endswith("corpus.txt")


def test_numbers_keep_their_json_text(uploader):
    dataset = upload_set(uploader, '{"statement": 12, "label": 0.5}\n', fields="statement,label")
    assert stored_records(dataset) == [{"statement": "12", "label": "0.5"}]


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        ('{"statement": "A.", "label": "true"}\n{"statement": "B."}\n', "s.jsonl", ["line 2", "no 'label'"]),
        ('{"statement": "A.", "label": "true"}\n\n{"statement": "B.", "label": " "}\n', "s.jsonl",
         ["line 3", "'label' is empty"]),
        ('{"statement": "A.", "label": null}\n', "s.jsonl", ["line 1", "'label'", "not null"]),
        ('{"statement": ["A."], "label": "true"}\n', "s.jsonl", ["line 1", "'statement'", "an array"]),
        ('{"statement": "A.", "label": "true"}\n["B.", "false"]\n', "s.jsonl", ["line 2", "JSON object"]),
        ('{"statement": "A.", "label": "true"}\n{"statement": \n', "s.jsonl",
         ["line 2", "not valid JSON", "at column 15"]),
        ('{"statement": "A.", "label": NaN}\n', "s.jsonl", ["line 1", "not valid JSON", "NaN"]),
        ('{"statement": "\\u200b", "label": "true"}\n', "s.jsonl", ["line 1", "'statement'", "invisible"]),
        ('{"statement": "A\\u0007.", "label": "true"}\n', "s.jsonl", ["line 1", "'statement'", "control"]),
        ("\n \n", "s.jsonl", ["no records"]),
        ("statement,label\n", "s.csv", ["no records"]),
        ("statement,category\nA.,x\n", "s.csv", ["line 1", "no column 'label'"]),
        ("statement,label\nA.,true\nB.\n", "s.csv", ["line 3", "no 'label'"]),
        ('statement,label\nA.,true\n"B.",""\n', "s.csv", ["line 3", "'label' is empty"]),
        ("statement,label\nA.,true,extra\n", "s.csv", ["line 2", "more than the header"]),
        ("statement,label,label\nA.,true,true\n", "s.csv", ["line 1", "'label' more than once"]),
        (f"statement,label\nA.,true\n{'x' * 140_000},true\n", "s.csv", ["line 3", "not valid CSV"]),
        ('{"statement": "A.", "label": "true", "x": ' + "[" * 100_000 + "\n", "s.jsonl", ["line 1", "too deeply"]),
        ('{"statement": "' + "y" * 20_001 + '", "label": "true"}\n', "s.jsonl", ["line 1", "20,001 characters"]),
    ],
    ids=[
        "jsonl-missing-field", "jsonl-empty-value", "jsonl-null", "jsonl-array", "jsonl-not-object",
        "jsonl-bad-json", "jsonl-nan", "invisible", "control", "jsonl-no-records", "csv-no-records",
        "csv-header-lacks-field", "csv-short-row", "csv-empty-cell", "csv-long-row", "csv-repeated-column",
        "csv-cell-over-the-csv-limit", "jsonl-nested-too-deeply", "value-too-long",
    ],
)  # fmt: skip
def test_a_record_that_does_not_fit_is_refused_naming_file_line_and_field(
    uploader, artifact_root, content, name, words
):
    with pytest.raises(ValidationError) as caught:
        upload_set(uploader, content, name=name)
    assert list(caught.value.message_dict) == ["file"]
    message = caught.value.message_dict["file"][0]
    for word in words:
        assert word in message, message
    assert not Dataset.objects.exists()
    assert files_under(artifact_root) == []  # no folder, no temporary file


def test_more_records_than_allowed_are_refused(uploader, artifact_root, monkeypatch):
    from experiments.services import prompt_sets

    monkeypatch.setattr(prompt_sets, "MAX_RECORDS", 2)
    with pytest.raises(ValidationError) as caught:
        upload_set(uploader, '{"statement": "A.", "label": "true"}\n' * 3)
    assert "line 3: more than 2 records" in caught.value.message_dict["file"][0]
    assert files_under(artifact_root) == []


def test_the_size_limit_and_utf8_checks_apply_to_prompt_sets(uploader, settings):
    settings.DATASET_MAX_BYTES = 20
    with pytest.raises(ValidationError) as caught:
        upload_set(uploader)
    assert "larger than 20 bytes" in caught.value.message_dict["file"][0]
    settings.DATASET_MAX_BYTES = 1000
    with pytest.raises(ValidationError) as caught:
        upload_set(uploader, b'{"statement": "caf\xe9", "label": "true"}\n')
    assert "not valid UTF-8" in caught.value.message_dict["file"][0]


@pytest.mark.parametrize(
    ("fields", "fmt", "words"),
    [
        (None, None, "Declare the fields"),
        ("", None, "Declare the fields"),
        ("Statement, label", None, "'Statement'"),
        ("statement, 9lives", None, "'9lives'"),
        (",".join(f"f{i}" for i in range(17)), None, "At most 16"),
        ("label, label", None, "more than once"),
        ("statement", "text", "Only a prompt set"),
    ],
    ids=["none", "empty", "upper-case", "digit-first", "too-many", "repeated", "text-with-fields"],
)
def test_bad_declared_fields_are_refused_naming_fields(uploader, artifact_root, fields, fmt, words):
    with pytest.raises(ValidationError) as caught:
        upload_set(uploader, fields=fields, format=fmt)
    assert words in caught.value.message_dict["fields"][0]
    assert not Dataset.objects.exists()
    assert files_under(artifact_root) == []


def test_an_unknown_format_is_refused_naming_format(uploader):
    with pytest.raises(ValidationError) as caught:
        upload_set(uploader, format="xml")
    assert "format" in caught.value.message_dict
    assert not Dataset.objects.exists()


# --- resolver, engine, references ----------------------------------------------------------------


def test_the_resolver_gives_each_type_its_file_and_refuses_the_other(uploader):
    prompt_set = upload_set(uploader)
    corpus = dataset_upload(user=uploader, name="corpus", uploaded_file=a_file("Some text.\n", "corpus.txt"))
    resolver = DatabaseDatasetResolver()
    assert resolver.prompt_set_path(prompt_set.pk).name == "items.jsonl"
    assert resolver.dataset_path(corpus.pk).name == "corpus.txt"
    with pytest.raises(DatasetNotAvailable, match="is a prompt set"):
        resolver.dataset_path(prompt_set.pk)
    with pytest.raises(DatasetNotAvailable, match="is a text corpus, not a prompt set"):
        resolver.prompt_set_path(corpus.pk)
    with pytest.raises(DatasetNotAvailable, match=f"no dataset {corpus.pk + 1}"):
        resolver.prompt_set_path(corpus.pk + 1)


def test_load_items_reads_an_uploaded_set_and_names_a_field_it_lacks(uploader):
    dataset = upload_set(uploader, CSV, name="s.csv", fields="statement,label")
    ref = PromptSetRef(dataset=dataset.pk)
    items = load_items(ref, DatabaseDatasetResolver(), fields=["statement", "label"])
    assert [item["label"] for item in items] == ["true", "false"]
    with pytest.raises(PromptSetProblem, match="has fields statement, label, category; this kind needs 'request'"):
        load_items(ref, DatabaseDatasetResolver(), fields=["request"])


def test_load_items_refuses_a_text_dataset(uploader):
    corpus = dataset_upload(user=uploader, name="corpus", uploaded_file=a_file("Some text.\n", "corpus.txt"))
    with pytest.raises(DatasetNotAvailable, match="not a prompt set"):
        load_items(PromptSetRef(dataset=corpus.pk), DatabaseDatasetResolver(), fields=["statement"])


class PromptParams(KindParams):
    """Params holding a prompt set, as the behavioural kinds' do."""

    prompts: PromptSource


def test_a_prompt_set_reference_to_a_text_dataset_is_refused_naming_the_field(uploader):
    corpus = dataset_upload(user=uploader, name="corpus", uploaded_file=a_file("Some text.\n", "corpus.txt"))
    prompt_set = upload_set(uploader)
    refused = _model_reference_errors(PromptParams(prompts={"source": "prompt_set", "dataset": corpus.pk}))
    assert list(refused) == ["params.prompts.dataset"]
    assert "is a text corpus, not a prompt set" in refused["params.prompts.dataset"][0]
    missing = _model_reference_errors(PromptParams(prompts={"source": "prompt_set", "dataset": 4242}))
    assert "There is no dataset 4242" in missing["params.prompts.dataset"][0]
    assert _model_reference_errors(PromptParams(prompts={"source": "prompt_set", "dataset": prompt_set.pk})) == {}
    assert _model_reference_errors(PromptParams(prompts={"source": "shipped", "name": "everyday_actions"})) == {}


def test_a_text_corpus_reference_to_a_prompt_set_is_refused_before_queueing(uploader):
    prompt_set = upload_set(uploader)
    params = {
        "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "n_ctx": 16, "d_vocab": 128},
        "data": {"source": "text_corpus", "dataset": prompt_set.pk, "tokenizer": "char"},
        "steps": 5,
    }
    with pytest.raises(ValidationError) as caught:
        spec_create(idea=IdeaFactory(), user=uploader, title="train", kind="train_transformer", params=params)
    assert list(caught.value.message_dict) == ["params.data.dataset"]
    assert "is a prompt set (jsonl), not a text corpus" in caught.value.message_dict["params.data.dataset"][0]
    assert not ExperimentRun.objects.exists()


def test_deleting_a_prompt_set_a_queued_run_reads_is_refused(uploader):
    dataset = upload_set(uploader)
    params = {"prompts": {"source": "prompt_set", "dataset": dataset.pk}}
    assert _references(params, dataset.pk)
    assert not _references({"prompts": {"source": "shipped", "name": "everyday_actions"}}, dataset.pk)
    # A queued run whose params name the set (stored directly: no registered kind reads prompt sets on this branch).
    run = ExperimentRunFactory(status=RunStatus.QUEUED)
    ExperimentRun.objects.filter(pk=run.pk).update(params={"steps": 3, **params})
    with pytest.raises(DatasetInUse):
        dataset_delete(dataset=dataset, user=uploader)
    assert Dataset.objects.filter(pk=dataset.pk).exists()


# --- the page ----------------------------------------------------------------------------------


def test_the_page_lists_a_prompt_set_with_its_format_fields_and_records(client, uploader):
    dataset = upload_set(uploader)
    html = client.get(reverse("dataset-list")).content.decode()
    assert "Prompt set (JSONL)" in html
    assert "2 records" in html
    assert '<span class="dataset-fields">statement, label</span>' in html
    assert json.dumps(dataset.reference).replace('"', "&quot;") in html
    assert "<code>request</code> field" in html  # refusal_rate needs a set the user uploads


def test_uploading_a_prompt_set_on_the_page(client, uploader):
    client.force_login(uploader)
    body = {"name": "Statements", "format": "", "fields": "statement, label", "file": a_file(CSV, "s.csv")}
    response = client.post(reverse("dataset-list"), body)
    assert response.status_code == 302, response.content.decode()
    dataset = Dataset.objects.get()
    assert (dataset.format, dataset.fields, dataset.n_records) == ("csv", ["statement", "label"], 2)


def test_a_prompt_set_refused_on_the_page_shows_the_line_and_field_next_to_the_file(client, uploader):
    client.force_login(uploader)
    body = {"name": "Statements", "fields": "statement, label", "file": a_file('{"statement": "A."}\n')}
    response = client.post(reverse("dataset-list"), body)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_file_error"' in html
    assert "line 1: the record has no &#x27;label&#x27;" in html
    assert 'name="fields" value="statement, label"' in html  # the form keeps what was typed
    assert 'name="format"' in html
    assert not Dataset.objects.exists()


def test_the_page_lists_the_shipped_sets_with_how_they_were_made(client):
    page = client.get(reverse("dataset-list")).content.decode()
    assert "Prompt sets the project ships" in page
    for shipped in SHIPPED.values():
        assert f'{{"source": "shipped", "name": "{shipped.name}"}}' in page.replace("&quot;", '"')
        assert f'<td class="num">{shipped.n_records}</td>' in page
