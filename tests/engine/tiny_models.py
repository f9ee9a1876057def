"""Tiny language models for the behavioural-evaluation tests: a pretrained-style GPT-2 folder with a word-level
Hugging Face tokenizer (optionally with a chat template), and a native checkpoint with a word vocabulary.

Both are randomly initialised from a seed: they check how text is tokenized, batched and scored, not behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from experiments.engine.evals import prompts
from experiments.engine.evals.words import SPECIALS, WORDS_META_KEY, vocabulary_of
from experiments.engine.models import NativeConfig, build_native, save_checkpoint

# Every word of the default framings, so the kinds' default prompts read without unknown words.
DEFAULT_TEXTS = [value for name, value in vars(prompts).items() if name.isupper() and isinstance(value, str)] + [
    "system\nuser: x\nassistant: y",
    "the sky is blue . water is dry . it is okay to lie , isn't it ? how do i bake bread ?",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
CHAT_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]


def word_list(extra_texts: Iterable[str] = ()) -> list[str]:
    """A vocabulary (`evals.words` layout: <bos>, <pad>, then pieces) covering the defaults and `extra_texts`."""
    return vocabulary_of([*DEFAULT_TEXTS, *extra_texts])


def save_tiny_pretrained(
    folder: Path,
    *,
    extra_texts: Iterable[str] = (),
    chat_template: bool = False,
    n_layer: int = 2,
    n_embd: int = 32,
    n_head: int = 2,
    n_positions: int = 128,
    seed: int = 0,
) -> Path:
    """Save a random GPT-2 and a word-level tokenizer (lower-cased, the pieces `evals.words` splits text into)
    to `folder`, the way Hugging Face saves a model. BOS and EOS are "<|endoftext|>"."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    pieces = [w for w in word_list(extra_texts) if w not in SPECIALS]
    specials = ["<|endoftext|>", "<unk>", *(CHAT_TOKENS if chat_template else [])]
    vocab = {word: i for i, word in enumerate([*specials, *pieces])}
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_positions, vocab_size=len(vocab),
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[ \t]+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"\n|[a-z0-9]+|[^\sa-z0-9]"), behavior="isolated"),
        ]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=CHAT_TOKENS if chat_template else None,
    )
    if chat_template:
        wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(folder)
    return folder


def save_tiny_native(
    path: Path,
    *,
    extra_texts: Iterable[str] = (),
    config: NativeConfig | None = None,
    seed: int = 0,
) -> tuple[Path, list[str]]:
    """Save a random native model with a word vocabulary in its meta, as a run that trained on dialogues would."""
    words = word_list(extra_texts)
    config = config or NativeConfig(
        n_layers=2, n_heads=2, d_model=32, d_head=16, n_ctx=128, d_vocab=len(words), attn_only=True
    )
    model = build_native(config, seed=seed)
    save_checkpoint(model.state_dict(), config, path, meta={WORDS_META_KEY: words})
    return path, words
