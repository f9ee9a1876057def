"""The ioi_prompts dataset: templates, names, the ABC corruption and both tokenizations."""

from __future__ import annotations

import pytest
import torch

from experiments.engine.errors import EngineError
from experiments.engine.ioi import (
    HELD_OUT_NAMES,
    NAMES,
    PAD,
    TEMPLATES,
    TRAIN_NAMES,
    VOCABULARY,
    WORD_IDS,
    IOIPrompts,
    WordEncoder,
    draw_prompts,
    encode_prompts,
    ioi_training_batch,
    one_token_names,
    prompts_for,
)
from experiments.engine.training import IOI_MODEL, TrainingParams


def test_the_lists_are_as_large_as_the_issue_asks_and_the_names_split_cleanly():
    assert len(TEMPLATES) >= 15 and len(NAMES) >= 100 and len(set(NAMES)) == len(NAMES)
    assert set(HELD_OUT_NAMES).isdisjoint(TRAIN_NAMES) and len(HELD_OUT_NAMES) == len(NAMES) // 5
    assert len(VOCABULARY) <= IOI_MODEL.d_vocab
    for template in TEMPLATES:  # IO, then S, then S again: the order the slots rely on
        assert [w for w in template.split() if w in ("{IO}", "{S}")] == ["{IO}", "{S}", "{S}"]


def test_prompts_put_the_names_where_they_say_in_both_orders():
    prompts = draw_prompts(200, TRAIN_NAMES, order="both", generator=torch.Generator().manual_seed(0))
    assert {p.abba for p in prompts} == {True, False}
    for p in prompts:
        assert p.words[p.io_at] == p.io and p.words[p.s1_at] == p.words[p.s2_at] == p.s
        assert len({p.io, p.s, p.c}) == 3 and p.s2_at > max(p.io_at, p.s1_at)
        assert (p.io_at < p.s1_at) == p.abba
    assert prompts[0].text.endswith(" to") and " ," not in prompts[0].text


def test_the_abc_version_differs_only_at_s2_and_the_batch_is_padded_on_the_right():
    prompts = draw_prompts(32, TRAIN_NAMES, order="both", generator=torch.Generator().manual_seed(1))
    batch = encode_prompts(prompts, WordEncoder(256), n_ctx=32)
    rows = torch.arange(len(batch))
    differs = batch.tokens != batch.corrupt
    assert differs.sum(dim=1).tolist() == [1] * len(batch) and differs[rows, batch.s2_pos].all()
    assert (batch.tokens[rows, batch.io_pos] == batch.io).all() and (batch.tokens[rows, batch.s1_pos] == batch.s).all()
    assert (batch.corrupt[rows, batch.s2_pos] == batch.c).all()
    assert (batch.tokens[rows, batch.end] == WORD_IDS["to"]).all()
    after_end = torch.arange(batch.tokens.shape[1]) > batch.end[:, None]
    assert (batch.tokens[after_end] == PAD).all()


def test_evaluation_prompts_are_seeded_and_use_the_names_asked_for():
    class Small:
        class cfg:
            d_vocab, n_ctx = 256, 32

    ref = IOIPrompts(names="held_out", n_prompts=64, seed=3)
    first, again = prompts_for(ref, WordEncoder(256), n_ctx=32), prompts_for(ref, WordEncoder(256), n_ctx=32)
    assert torch.equal(first.tokens, again.tokens)
    held_out_ids = {WORD_IDS[n] for n in HELD_OUT_NAMES}
    assert set(first.io.tolist()) | set(first.s.tolist()) <= held_out_ids
    with pytest.raises(EngineError, match="vocabulary has 64 ids"):
        WordEncoder(64)


def test_training_batches_never_show_a_held_out_name_in_a_prompt_but_roll_calls_show_all():
    tokens, answers, trained = ioi_training_batch(
        IOIPrompts(roll_call_fraction=0.25), batch=64, length=32, d_vocab=256, generator=torch.Generator()
    )
    held_out = torch.tensor([WORD_IDS[n] for n in HELD_OUT_NAMES])
    prompts, rolls = tokens[:48], tokens[48:]
    assert not torch.isin(prompts, held_out).any()
    assert torch.isin(rolls, held_out).any()
    assert answers[:48].sum(dim=1).tolist() == [1] * 48  # one answer per prompt, the last real token
    last = trained[:48].sum(dim=1) - 1
    assert answers[torch.arange(48), last].all()
    assert trained[48:].all()


def test_a_training_spec_on_ioi_prompts_gets_the_ioi_model_unless_it_names_another():
    assert TrainingParams.model_validate({"data": {"source": "ioi_prompts"}}).model == IOI_MODEL
    partial = TrainingParams.model_validate({"data": {"source": "ioi_prompts"}, "model": {"n_layers": 2}})
    assert partial.model.n_layers == 2 and partial.model.d_vocab == IOI_MODEL.d_vocab
    assert TrainingParams.model_validate({}).model.d_vocab == 64


def test_a_pretrained_tokenizer_keeps_only_one_token_names(tiny_tokenizer):
    kept = one_token_names(tiny_tokenizer)
    assert 0 < len(kept) < len(NAMES)
    assert all(len(tiny_tokenizer.encode(f" {n}", add_special_tokens=False)) == 1 for n in kept)


@pytest.fixture
def tiny_tokenizer(tmp_path):
    """A word-level tokenizer that knows a few names, as a pretrained model's tokenizer would."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "Mary", "John", "Anna", "When", "and", "to", ",", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
