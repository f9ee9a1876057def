"""The batched scorer: padded batches give the numbers single prompts give, on a native word-vocabulary
checkpoint and on a pretrained GPT-2 folder; prompts use the chat template where there is one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.evals import prompts as p
from experiments.engine.evals.prompts import Prompt, plain_text
from experiments.engine.evals.scoring import (
    LanguageModel,
    OptionNotSingleToken,
    _reply_text,
    language_model_tokenizer,
    load_language_model,
)
from experiments.engine.evals.words import WordTokenizer
from experiments.engine.models import NativeConfig, NativeModelRef, PretrainedModelRef, RunModelRef, save_checkpoint
from tests.engine.tiny_models import save_tiny_native, save_tiny_pretrained

STATEMENTS = [
    "The sky is blue.",
    "Water is dry.",
    "The sky is blue. Water is dry. The sky is blue.",
    "Water is blue.",
    "It is okay to lie, isn't it?",
    "The sky is dry. Water is blue. The sky is blue. Water is dry. The sky is blue.",
]


def statement_prompts(persona: str = p.BASELINE_PERSONA) -> list[Prompt]:
    return [
        Prompt(
            p.PERSONA_SYSTEM.format(persona=persona), p.STATEMENT_USER.format(statement=s), p.STATEMENT_ANSWER_PREFIX
        )
        for s in STATEMENTS
    ]


def all_prompts() -> list[Prompt]:
    # Lengths from a few tokens to a few dozen: batches mix very different amounts of padding.
    return [*statement_prompts(), *statement_prompts(p.FRIENDLY_PERSONA), Prompt(None, "How do I bake bread?")]


class Runs:
    """A resolver over checkpoint files named by (run, artifact)."""

    def __init__(self, files: dict[tuple[int, str], Path]) -> None:
        self.files = files

    def artifact_path(self, run_id: int, name: str) -> Path:
        if (run_id, name) not in self.files:
            raise ModelNotAvailable(f"Run {run_id} has no artifact {name!r}.")
        return self.files[(run_id, name)]

    def checkpoints(self, run_id: int) -> list[tuple[int, str]]:
        return []


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_tiny_pretrained(root / "plain")
    save_tiny_pretrained(root / "chat", chat_template=True)
    save_tiny_native(root / "native.safetensors")
    words_free = NativeConfig(n_layers=1, n_heads=2, d_model=16, d_head=8, n_ctx=32, d_vocab=20)
    from experiments.engine.models import build_native

    save_checkpoint(build_native(words_free, seed=0).state_dict(), words_free, root / "no-words.safetensors")
    return root


@pytest.fixture(scope="module")
def allowed(folders):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRETRAINED_MODEL_DIRS", str(folders))
        yield


@pytest.fixture(scope="module")
def runs(folders) -> Runs:
    return Runs({(1, "checkpoint-100"): folders / "native.safetensors", (2, "final"): folders / "no-words.safetensors"})


def ctx(runs: Runs) -> SimpleNamespace:
    return SimpleNamespace(device=torch.device("cpu"), artifact_resolver=runs, seed=0)


@pytest.fixture(scope="module")
def native(runs) -> LanguageModel:
    return load_language_model(RunModelRef(run=1, artifact="checkpoint-100"), ctx(runs))


@pytest.fixture(scope="module")
def pretrained(folders, allowed, runs) -> LanguageModel:
    return load_language_model(PretrainedModelRef(name=str(folders / "plain")), ctx(runs))


@pytest.fixture(scope="module")
def chat(folders, allowed, runs) -> LanguageModel:
    return load_language_model(PretrainedModelRef(name=str(folders / "chat")), ctx(runs))


@pytest.fixture(params=["native", "pretrained", "chat"])
def model(request) -> LanguageModel:
    return request.getfixturevalue(request.param)


def test_batched_option_logprobs_equal_one_prompt_at_a_time(model):
    ids = [model.prompt_ids(prompt) for prompt in all_prompts()]
    assert len({len(i) for i in ids}) >= 5  # the batches really are padded
    options = [model.option_id(p.TRUE_OPTION, field="true_option"), model.option_id(p.FALSE_OPTION, field="x")]
    single = model.option_logprobs(ids, options, batch_size=1)
    for batch_size in (4, 32):
        assert np.abs(model.option_logprobs(ids, options, batch_size=batch_size) - single).max() < 1e-4
    assert single.shape == (len(ids), 2) and (single < 0).all()
    assert np.ptp(single[:, 0]) > 1e-3  # different prompts, different numbers: nothing is read from a wrong row


def test_option_logprobs_are_the_log_softmax_over_the_whole_vocabulary_at_the_last_token(model):
    ids = model.prompt_ids(statement_prompts()[2])
    tokens = torch.tensor([ids])
    with torch.no_grad():
        logits = model._hf(tokens).logits if model._hf is not None else model.model(tokens)
    expected = logits[0, -1].log_softmax(-1)[[3, 5, 7]].numpy()
    assert np.allclose(model.option_logprobs([ids], [3, 5, 7])[0], expected, atol=1e-5)


def test_batched_greedy_generation_equals_one_prompt_at_a_time(model):
    ids = [model.prompt_ids(prompt) for prompt in all_prompts()]
    one_by_one = model.generate(ids, max_new_tokens=8, batch_size=1)
    assert model.generate(ids, max_new_tokens=8, batch_size=16) == one_by_one
    assert model.generate(ids, max_new_tokens=8, batch_size=3) == one_by_one
    assert any(reply for reply in one_by_one)  # a random model still writes words


def test_sampled_generation_repeats_with_its_seed_whatever_the_batch(native):
    ids = [native.prompt_ids(prompt) for prompt in all_prompts()]
    first = native.generate(ids, max_new_tokens=6, temperature=1.0, seed=3, batch_size=16)
    assert native.generate(ids, max_new_tokens=6, temperature=1.0, seed=3, batch_size=1) == first
    assert native.generate(ids, max_new_tokens=6, temperature=1.0, seed=4, batch_size=16) != first
    assert first != native.generate(ids, max_new_tokens=6, batch_size=16)  # sampling is not greedy


def test_progress_reports_each_batch(native):
    ids = [native.prompt_ids(prompt) for prompt in all_prompts()]
    seen: list[tuple[int, int]] = []
    native.option_logprobs(ids, [2], batch_size=5, on_batch=lambda done, total: seen.append((done, total)))
    assert seen == [(5, 13), (10, 13), (13, 13)]


def test_native_prompts_are_bos_then_the_plain_text_in_the_checkpoints_words(native):
    prompt = statement_prompts()[0]
    assert isinstance(native.tokenizer, WordTokenizer) and not native.has_chat_template
    ids = native.prompt_ids(prompt)
    assert ids[0] == 0
    assert ids[1:] == native.tokenizer.encode(plain_text(prompt))
    assert native.max_length == 128 and native.name == "run 1 (checkpoint-100)"


def test_pretrained_prompts_use_the_chat_template_when_the_tokenizer_has_one(pretrained, chat):
    prompt = statement_prompts()[0]
    assert chat.has_chat_template and not pretrained.has_chat_template
    chat_ids = chat.prompt_ids(prompt)
    pieces = chat.tokenizer.convert_ids_to_tokens(chat_ids)
    assert pieces[:2] == ["<|endoftext|>", "<|system|>"]
    assert "<|user|>" in pieces and pieces[-4:] == ["<|assistant|>", "the", "statement", "is"]
    plain_ids = pretrained.prompt_ids(prompt)
    assert plain_ids[0] == pretrained.tokenizer.bos_token_id
    assert plain_ids[1:] == pretrained.tokenizer.encode(plain_text(prompt), add_special_tokens=False)
    assert pretrained.max_length == 128


def test_a_prompt_longer_than_the_context_is_refused(native):
    long = Prompt(None, " ".join(["water is dry ."] * 40))
    with pytest.raises(EngineError, match="context holds 128"):
        native.prompt_ids(long)


def test_words_a_native_model_never_saw_are_named(native):
    with pytest.raises(EngineError, match=r"run 1 \(checkpoint-100\) cannot read a prompt: .*lacks 'zebra'"):
        native.prompt_ids(Prompt(None, "Is a zebra blue?"))


def test_option_ids_beyond_the_vocabulary_are_refused(native):
    with pytest.raises(EngineError, match="vocabulary size"):
        native.option_logprobs([native.prompt_ids(statement_prompts()[0])], [native.vocab_size])


def test_options_must_be_single_tokens(native, pretrained):
    assert pretrained.option_id(" true", field="true_option") == pretrained.tokenizer.convert_tokens_to_ids("true")
    with pytest.raises(OptionNotSingleToken, match=r"params\.true_option: ' is true' is 2 tokens for .*'is', 'true'"):
        pretrained.option_id(" is true", field="true_option")
    with pytest.raises(OptionNotSingleToken, match=r"params\.false_option: ' bogus' is not in run 1"):
        native.option_id(" bogus", field="false_option")
    assert native.tokenizer.words[native.option_id(" false", field="false_option")] == "false"


def test_a_reply_ends_where_the_model_starts_the_users_next_turn():
    assert _reply_text(" Sure, here it is.\nUser: and more\nAssistant: no") == "Sure, here it is."
    assert _reply_text("i can not help .\nuser : hi") == "i can not help ."
    assert _reply_text("user: at once") == ""
    assert _reply_text("The user: is named") == "The user: is named"  # only at a line's start


def test_untrained_native_models_and_checkpoints_without_words_are_refused(runs):
    with pytest.raises(EngineError, match="no vocabulary"):
        load_language_model(NativeModelRef(), ctx(runs))
    with pytest.raises(ModelNotAvailable, match="has no word vocabulary"):
        load_language_model(RunModelRef(run=2, artifact="final"), ctx(runs))
    with pytest.raises(ModelNotAvailable, match="has no word vocabulary"):
        language_model_tokenizer(RunModelRef(run=2, artifact="final"), runs)


def test_the_tokenizer_alone_is_read_without_weights(folders, allowed, runs, native):
    words = language_model_tokenizer(RunModelRef(run=1, artifact="checkpoint-100"), runs)
    assert isinstance(words, WordTokenizer) and words.words == native.tokenizer.words
    hf = language_model_tokenizer(PretrainedModelRef(name=str(folders / "chat")), runs)
    assert hf.chat_template and hf.encode(" true", add_special_tokens=False) == [hf.convert_tokens_to_ids("true")]
    assert language_model_tokenizer(PretrainedModelRef(name="nobody/absent-model-xyz"), runs) is None
    with pytest.raises(ModelNotAvailable, match="PRETRAINED_MODEL_DIRS"):
        language_model_tokenizer(PretrainedModelRef(name="/etc"), runs)


def test_a_template_that_refuses_a_system_turn_gets_the_framing_in_the_users_turn(folders, allowed, runs):
    from experiments.engine.evals.scoring import encode_prompt

    tokenizer = language_model_tokenizer(PretrainedModelRef(name=str(folders / "chat")), runs)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system turn') }}{% endif %}"
        "<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}<|assistant|> "
    )
    pieces = tokenizer.convert_ids_to_tokens(encode_prompt(tokenizer, statement_prompts()[0]))
    assert "<|system|>" not in pieces
    assert pieces[:6] == ["<|endoftext|>", "<|user|>", "you", "are", "a", "truthful"]


class ScriptedModel(torch.nn.Module):
    """Writes `script` after any prompt: the logits at position i favour script[i - prompt_length + 1]."""

    def __init__(self, script: list[int], prompt_length: int, vocab: int) -> None:
        super().__init__()
        self.script, self.prompt_length, self.vocab = script, prompt_length, vocab

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*tokens.shape, self.vocab)
        for pos in range(tokens.shape[1]):
            step = pos - self.prompt_length + 1
            if 0 <= step < len(self.script):
                logits[:, pos, self.script[step]] = 10.0
        return logits


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("sure . \n user : water is dry", "sure ."),  # the user's next turn is cut off and stops the reply
        ("no . <bos> water is dry", "no ."),  # a BOS ends the dialogue
        ("water is dry . water is dry", "water is dry . water"),  # max_new_tokens
    ],
)
def test_generation_stops_at_the_users_next_turn_an_end_token_or_the_token_budget(reply, expected):
    words = WordTokenizer(["<bos>", "<pad>", "\n", ".", ":", "dry", "is", "no", "sure", "user", "water"])
    script = [words.ids[w] for w in reply.split(" ")]
    prompt = [0, words.ids["water"], words.ids["is"]]
    model = LanguageModel(
        name="scripted", model=ScriptedModel(script, len(prompt), len(words)), tokenizer=words,
        device=torch.device("cpu"), max_length=64,
    )  # fmt: skip
    assert model.generate([prompt], max_new_tokens=5) == [words.decode(words.encode(expected))]
