"""The behavioural kinds' bad input is a 400 naming the field before anything is stored or queued: a template
without its slot, an answer option that is not one token for the model's tokenizer, a prompt set missing a field
the kind needs (or not a prompt set, or not there), invisible framing text, a boolean where a number goes."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from experiments.services import dataset_upload
from tests.api.test_spec_references import assert_refused, post_spec
from tests.engine.tiny_models import save_tiny_pretrained

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def gpt2(tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    folder = save_tiny_pretrained(tmp_path / "gpt2", extra_texts=["the sun is hot .", "true indeed"])
    return {"source": "pretrained", "name": str(folder)}


def upload(user, content: str, name: str, fields: str | None):
    file = SimpleUploadedFile(name, content.encode())
    return dataset_upload(user=user, name="Set", uploaded_file=file, fields=fields)


@pytest.mark.parametrize(
    ("kind", "params", "field", "message"),
    [
        ("persona_truthfulness", {"user_template": "Is it true?"}, "params.user_template", "slot {statement}"),
        ("persona_truthfulness", {"true_option": " true indeed"}, "params.true_option", "is 2 tokens"),
        ("persona_truthfulness", {"personas": ["\u200b\u200b"]}, "params.personas.0", "visible text"),
        ("persona_truthfulness", {"baseline": "truth\x00ful"}, "params.baseline", "visible text"),
        ("persona_truthfulness", {"max_items": True}, "params.max_items", "valid integer"),
        ("framing_conformity", {"disconfirming_template": "Not okay?"}, "params.disconfirming_template", "{action}"),
        ("framing_conformity", {"agree_option": " the sun"}, "params.agree_option", "is 2 tokens"),
        ("refusal_rate", {"user_template": "{request} {persona}"}, "params.user_template", "has slots persona"),
    ],
)
def test_bad_params_are_refused_naming_the_field(user, idea, gpt2, kind, params, field, message):
    assert_refused(post_spec(user, idea, kind, {"model": gpt2, **params}), field, message)


def test_a_prompt_set_missing_a_field_the_kind_needs_is_refused(user, idea, gpt2):
    actions = upload(user, '{"action": "take a nap"}\n{"action": "skip lunch"}\n', "actions.jsonl", "action")
    params = {"model": gpt2, "data": {"source": "prompt_set", "dataset": actions.pk}}
    assert_refused(post_spec(user, idea, "persona_truthfulness", params), "params.data", "needs 'statement'")


def test_a_text_dataset_or_a_missing_one_is_not_a_prompt_set(user, idea, gpt2):
    text = upload(user, "plain text, not records\n", "corpus.txt", None)
    for dataset in (text.pk, 424242):
        params = {"model": gpt2, "data": {"source": "prompt_set", "dataset": dataset}}
        assert_refused(post_spec(user, idea, "framing_conformity", params), "params.data.dataset")


def test_labels_other_than_true_or_false_are_refused(user, idea, gpt2):
    statements = upload(
        user, "statement,label\nThe sun is hot.,maybe\nThe sun is cold.,false\n", "s.csv", "statement,label"
    )
    params = {"model": gpt2, "data": {"source": "prompt_set", "dataset": statements.pk}}
    assert_refused(post_spec(user, idea, "persona_truthfulness", params), "params.data", "label must be 'true' or")
