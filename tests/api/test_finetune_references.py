"""finetune_comparison's bad input is a 400 naming the field before anything is queued: a base checkpoint that
does not exist, original data longer than the base model's context (a checkpoint's, or a pretrained folder's
config.json), a fine-tuning corpus whose vocabulary exceeds the model's, that is shorter than one sequence or that
would feed a pretrained base, and out-of-bounds fine-tuning settings."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from experiments.models import ExperimentSpec
from experiments.services import dataset_upload
from tests.api.conftest import assert_error
from tests.api.test_spec_references import MISSING_RUN, assert_refused, post_spec, training_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

KIND = "finetune_comparison"
# 70 distinct characters, the newline and BOS: 72 token ids, more than the default model's 64.
WIDE_TEXT = ("".join(chr(c) for c in range(ord("!"), ord("!") + 70)) + "\n") * 20


def corpus(user, text: str):
    file = SimpleUploadedFile("corpus.txt", text.encode(), "text/plain")
    return dataset_upload(user=user, name="Corpus", uploaded_file=file)


def test_a_base_checkpoint_that_does_not_exist_is_refused(user, idea):
    response = post_spec(
        user, idea, KIND, {"base": {"source": "run", "run": MISSING_RUN, "artifact": "checkpoint-3000"}}
    )
    assert_refused(response, "params.base", f"There is no run {MISSING_RUN}.")


def test_a_base_checkpoint_of_a_run_is_accepted(user, idea):
    run = training_run(steps=(3000,))
    response = post_spec(user, idea, KIND, {"base": {"source": "run", "run": run.pk, "artifact": "checkpoint-3000"}})
    assert response.status_code == 201, response.content


def test_a_pretrained_base_is_accepted_with_generated_fine_tuning_data(user, idea):
    response = post_spec(user, idea, KIND, {"base": {"source": "pretrained", "name": "gpt2"}})
    assert response.status_code == 201, response.content


def test_a_text_corpus_for_a_pretrained_base_is_refused(user, idea):
    dataset = corpus(user, "the cat sat on the mat\n" * 50)
    params = {"base": {"source": "pretrained", "name": "gpt2"}, "finetune_data": {"source": "text_corpus",
              "dataset": dataset.pk}}  # fmt: skip
    response = post_spec(user, idea, KIND, params)
    assert_refused(response, "params.finetune_data", "platform's tokenizer, not the model's", "markov_text")


def test_original_data_longer_than_a_pretrained_folders_context_is_refused(user, idea, tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    folder = tmp_path / "tiny"
    folder.mkdir()
    sizes = {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "vocab_size": 30, "n_positions": 32}
    (folder / "config.json").write_text(json.dumps(sizes))
    response = post_spec(user, idea, KIND, {"base": {"source": "pretrained", "name": str(folder)}})
    assert_refused(response, "params.original_data.half_length", "the model's context is 32", "half_length <= 15")


def test_original_data_longer_than_the_base_checkpoints_context_is_refused(user, idea):
    run = training_run(steps=(3000,), n_ctx=16)
    response = post_spec(user, idea, KIND, {"base": {"source": "run", "run": run.pk, "artifact": "checkpoint-3000"}})
    assert_refused(response, "params.original_data.half_length", "the model's context is 16", "half_length <= 7")


def test_original_data_longer_than_the_base_trained_here_is_refused(user, idea):
    response = post_spec(user, idea, KIND, {"base_training": {"model": {"n_ctx": 32}}})
    assert_refused(response, "params.original_data.half_length", "the model's context is 32")


def test_fine_tuning_a_checkpoint_beyond_the_token_budget_is_refused(user, idea):
    run = training_run(steps=(3000,), n_ctx=2048)
    base = {"source": "run", "run": run.pk, "artifact": "checkpoint-3000"}
    params = {"base": base, "steps": 20_000, "batch_size": 512, "original_data": {"half_length": 31}}
    assert_refused(post_spec(user, idea, KIND, params), "params.steps", "the limit is 2,000,000,000")
    params = {"base_training": {"model": {"n_ctx": 2048}}, "steps": 20_000, "batch_size": 512}
    body = assert_error(post_spec(user, idea, KIND, params), 400, field="params", code="invalid")
    assert "the limit is 2,000,000,000" in body["errors"]["params"][0], body


def test_a_corpus_with_more_characters_than_the_models_vocabulary_is_refused(user, idea, settings):
    dataset = corpus(user, WIDE_TEXT)
    data = {"source": "text_corpus", "dataset": dataset.pk, "tokenizer": "char"}
    response = post_spec(user, idea, KIND, {"finetune_data": data})
    assert_refused(response, "params.finetune_data.dataset", "72 token ids", "vocabulary is 64")
    wider = {"finetune_data": data, "base_training": {"model": {"d_vocab": 96}}}
    assert post_spec(user, idea, KIND, wider).status_code == 201


def test_a_bpe_corpus_is_refused_for_a_model_with_fewer_ids_than_its_bytes(user, idea):
    dataset = corpus(user, "the cat sat on the mat\n" * 50)
    response = post_spec(user, idea, KIND, {"finetune_data": {"source": "text_corpus", "dataset": dataset.pk}})
    assert_refused(response, "params.finetune_data.dataset", "at least 257 token ids", "tokenizer 'char'")


def test_a_corpus_shorter_than_one_sequence_is_refused(user, idea):
    dataset = corpus(user, "abc abc abc\n")
    data = {"source": "text_corpus", "dataset": dataset.pk, "tokenizer": "char"}
    response = post_spec(user, idea, KIND, {"finetune_data": data})
    assert_refused(response, "params.finetune_data.dataset", "fewer than one sequence")


def test_a_corpus_that_does_not_exist_is_refused_once(user, idea):
    response = post_spec(user, idea, KIND, {"finetune_data": {"source": "text_corpus", "dataset": MISSING_RUN}})
    assert_refused(response, "params.finetune_data.dataset", f"There is no dataset {MISSING_RUN}")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"steps": 0}, "params.steps"),
        ({"steps": 10**6}, "params.steps"),
        ({"lr": 5}, "params.lr"),
        ({"batch_size": 4096}, "params.batch_size"),
        ({"finetune_data": {"source": "markov_text", "branching": 0}}, "params.finetune_data.markov_text.branching"),
        ({"n_new_sequences": 1}, "params.n_new_sequences"),
    ],
)
def test_out_of_bounds_settings_are_refused(user, idea, params, field):
    body = assert_error(post_spec(user, idea, KIND, params), 400, code="invalid")
    assert field in body["errors"], body
    assert not ExperimentSpec.objects.filter(title="References").exists()
