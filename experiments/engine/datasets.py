"""Datasets, referenced from params the way models are. Every generator is seeded and deterministic.

- `repeated_random_tokens`: BOS, then `half_length` random tokens, then the same
  tokens again: the standard protocol for scoring induction (Olsson et al. 2022).
  A model that has induction heads predicts the second half almost perfectly.
- `induction_training`: random tokens in which one segment of random length is
  copied to a random later place. Only a real induction mechanism (look back
  for the previous occurrence of the current token, predict what followed it)
  predicts the copy; because the distance varies, a one-layer model cannot
  solve it by position alone.
- `markov_text`: synthetic "text" with learnable statistics: each token is
  followed by one of a few likely successors (a fixed random table, the
  "language"), and one phrase of each sequence is repeated later, as in
  `induction_training`. A model trained on random tokens must learn the
  bigram statistics anew, while induction still predicts the repeat.
- `ioi_prompts`: indirect-object-identification sentences from templates
  (`experiments.engine.ioi`), in a word-level vocabulary or a pretrained
  tokenizer, with their corrupted "ABC" versions.
- `dialogues`: synthetic dialogues with a built-in behavioural effect of known size
  (`experiments.engine.evals.dialogues`), in the behavioural kinds' prompt format.
- `text_corpus`: an uploaded UTF-8 text file (the platform's Dataset record),
  tokenized once with a byte-level BPE tokenizer trained locally on it, or at
  character level, and cached next to the file.

Token 0 is BOS in the synthetic datasets; random tokens are drawn from 1..d_vocab-1.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Literal, Protocol

import numpy as np
import torch
from jaxtyping import Bool, Int
from pydantic import Field, model_validator
from torch import Tensor

from experiments.engine.errors import EngineError
from experiments.engine.evals.dialogues import Dialogues
from experiments.engine.facts import Facts
from experiments.engine.ioi import IOIPrompts
from experiments.engine.params import KindParams
from experiments.engine.types import RecordId

BOS = 0


class DatasetNotAvailable(EngineError):
    """A referenced dataset does not exist or cannot be read."""


class RepeatedRandomTokens(KindParams):
    source: Literal["repeated_random_tokens"] = "repeated_random_tokens"
    n_sequences: int = Field(64, ge=1, le=4096, description="How many sequences.")
    half_length: int = Field(32, ge=2, le=1023, description="Random tokens before they repeat.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Which random tokens (independent of the run's seed).")

    @property
    def length(self) -> int:
        return 1 + 2 * self.half_length


def _segments_ordered(ref):
    """The generated sources' one rule on their copied segment: min_segment <= max_segment."""
    if ref.min_segment > ref.max_segment:
        raise ValueError("min_segment must not exceed max_segment")
    return ref


class InductionTraining(KindParams):
    source: Literal["induction_training"] = "induction_training"
    min_segment: int = Field(8, ge=2, le=512, description="Shortest copied segment.")
    max_segment: int = Field(24, ge=2, le=512, description="Longest copied segment.")

    @model_validator(mode="after")
    def _ordered(self) -> InductionTraining:
        return _segments_ordered(self)


class MarkovText(KindParams):
    source: Literal["markov_text"] = "markov_text"
    branching: int = Field(
        4, ge=1, le=64, description="Likely successors of each token (drawn uniformly): lower means more predictable."
    )
    language_seed: int = Field(
        0, ge=0, le=2**31 - 1, description="Which successor table (the 'language'), independent of the run's seed."
    )
    min_segment: int = Field(8, ge=2, le=512, description="Shortest repeated phrase.")
    max_segment: int = Field(24, ge=2, le=512, description="Longest repeated phrase.")

    @model_validator(mode="after")
    def _ordered(self) -> MarkovText:
        return _segments_ordered(self)


class TextCorpus(KindParams):
    source: Literal["text_corpus"] = "text_corpus"
    dataset: RecordId = Field(description="The id of an uploaded text dataset.")
    tokenizer: Literal["bpe", "char"] = Field("bpe", description="Byte-level BPE trained on the text, or characters.")
    vocab_size: int = Field(1024, ge=64, le=65536, description="BPE vocabulary size (ignored for 'char').")


TrainingData = Annotated[
    InductionTraining | MarkovText | TextCorpus | IOIPrompts | Facts | Dialogues, Field(discriminator="source")
]
EvalData = Annotated[RepeatedRandomTokens | InductionTraining | MarkovText | TextCorpus, Field(discriminator="source")]


class DatasetResolver(Protocol):
    """Finds an uploaded dataset's file; the platform implements it over its database. Each method raises
    DatasetNotAvailable for a missing dataset or one of the other type."""

    def dataset_path(self, dataset_id: int) -> Path:
        """A text corpus's UTF-8 file."""
        ...

    def prompt_set_path(self, dataset_id: int) -> Path:
        """A prompt set's records, normalized: one JSON object of strings a line (`evals.prompt_sets`)."""
        ...


# -- synthetic --------------------------------------------------------------------------------


def repeated_random_tokens(ref: RepeatedRandomTokens, *, d_vocab: int) -> Int[Tensor, "batch pos"]:
    generator = torch.Generator().manual_seed(ref.seed)
    half = torch.randint(1, d_vocab, (ref.n_sequences, ref.half_length), generator=generator)
    bos = torch.full((ref.n_sequences, 1), BOS, dtype=torch.long)
    return torch.cat([bos, half, half], dim=1)


def induction_batch(
    ref: InductionTraining, *, batch: int, length: int, d_vocab: int, generator: torch.Generator
) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """Random sequences, each with one segment copied to a random later place.

    Returns the tokens and a mask of the positions whose token a perfect induction
    mechanism predicts (every copied token after the first).
    """
    tokens = torch.randint(1, d_vocab, (batch, length), generator=generator)
    tokens[:, 0] = BOS
    return tokens, _copy_a_segment(tokens, ref.min_segment, ref.max_segment, generator)


def _copy_a_segment(
    tokens: Int[Tensor, "batch pos"], min_segment: int, max_segment: int, generator: torch.Generator
) -> Bool[Tensor, "batch pos"]:
    """Copy one segment of each row (after BOS) to a random later place, in place; the mask of copied tokens
    after the first (those an induction mechanism predicts)."""
    batch, length = tokens.shape
    max_segment = min(max_segment, (length - 1) // 2)
    min_segment = min(min_segment, max_segment)
    predictable = torch.zeros(batch, length, dtype=torch.bool)
    draws = torch.rand(batch, 3, generator=generator)
    for row in range(batch):
        size = min_segment + int(draws[row, 0] * (max_segment - min_segment + 1))
        start = 1 + int(draws[row, 1] * (length - 2 * size))  # source in [1, length - 2*size]
        dest = start + size + int(draws[row, 2] * (length - start - 2 * size + 1))  # dest in [start+size, length-size]
        tokens[row, dest : dest + size] = tokens[row, start : start + size]
        predictable[row, dest + 1 : dest + size] = True
    return predictable


def markov_batch(
    ref: MarkovText, *, batch: int, length: int, d_vocab: int, generator: torch.Generator
) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """Sequences of the Markov 'language' `ref.language_seed` names, each with one phrase repeated later.

    Returns the tokens and the mask of repeated tokens after the first, as `induction_batch` does.
    """
    language = torch.Generator().manual_seed(ref.language_seed)
    successors = torch.randint(1, d_vocab, (d_vocab, ref.branching), generator=language)  # [token, choice]
    tokens = torch.empty(batch, length, dtype=torch.long)
    tokens[:, 0] = BOS
    tokens[:, 1] = torch.randint(1, d_vocab, (batch,), generator=generator)
    choices = torch.randint(0, ref.branching, (batch, length), generator=generator)
    for pos in range(2, length):
        tokens[:, pos] = successors[tokens[:, pos - 1], choices[:, pos]]
    return tokens, _copy_a_segment(tokens, ref.min_segment, ref.max_segment, generator)


def synthetic_batch(
    ref: InductionTraining | MarkovText, *, batch: int, length: int, d_vocab: int, generator: torch.Generator
) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """A batch of a generated training source: the tokens and the mask of copied tokens induction predicts."""
    make = markov_batch if isinstance(ref, MarkovText) else induction_batch
    return make(ref, batch=batch, length=length, d_vocab=d_vocab, generator=generator)


# -- text corpus ---------------------------------------------------------------------------------


def _cache_path(text_path: Path, ref: TextCorpus) -> Path:
    digest = hashlib.sha256(text_path.read_bytes()).hexdigest()[:16]
    suffix = "char" if ref.tokenizer == "char" else f"bpe{ref.vocab_size}"
    return text_path.with_name(f"{text_path.name}.{digest}.{suffix}")


def corpus_tokens(ref: TextCorpus, resolver: DatasetResolver | None) -> tuple[np.ndarray, int]:
    """The whole corpus as token ids (and the vocabulary size), tokenized once and cached beside the file."""
    if resolver is None:
        raise DatasetNotAvailable("This context cannot look up uploaded datasets.")
    path = resolver.dataset_path(ref.dataset)
    cache = _cache_path(path, ref)
    ids_file, meta_file = cache.with_suffix(cache.suffix + ".npy"), cache.with_suffix(cache.suffix + ".json")
    if ids_file.exists() and meta_file.exists():
        return np.load(ids_file), json.loads(meta_file.read_text())["vocab_size"]
    text = path.read_text(encoding="utf-8")
    if ref.tokenizer == "char":
        alphabet = sorted(set(text))
        index = {ch: i + 1 for i, ch in enumerate(alphabet)}  # 0 stays BOS
        ids = np.fromiter((index[ch] for ch in text), dtype=np.int32, count=len(text))
        meta = {"vocab_size": len(alphabet) + 1, "alphabet": "".join(alphabet)}
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=ref.vocab_size,
            special_tokens=["<bos>"],  # id 0
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
        ids = np.asarray(tokenizer.encode(text).ids, dtype=np.int32)
        tokenizer.save(str(cache.with_suffix(cache.suffix + ".tokenizer.json")))
        meta = {"vocab_size": tokenizer.get_vocab_size()}
    # Written under temporary names and renamed: a run reading the cache never sees half a file.
    partial = ids_file.with_name(f"{ids_file.name}.{os.getpid()}.partial.npy")
    np.save(partial, ids)
    os.replace(partial, ids_file)
    partial_meta = meta_file.with_name(f"{meta_file.name}.{os.getpid()}.partial")
    partial_meta.write_text(json.dumps(meta))
    os.replace(partial_meta, meta_file)
    return ids, meta["vocab_size"]


def corpus_batch(ids: np.ndarray, *, batch: int, length: int, generator: torch.Generator) -> Int[Tensor, "batch pos"]:
    """Random windows of the corpus, each starting with BOS."""
    if len(ids) < length:
        raise DatasetNotAvailable(f"The corpus has {len(ids)} tokens, fewer than one sequence of {length}.")
    starts = torch.randint(0, len(ids) - length + 2, (batch,), generator=generator).numpy()
    windows = np.stack([ids[s : s + length - 1] for s in starts])
    tokens = torch.from_numpy(windows.astype(np.int64))
    return torch.cat([torch.full((batch, 1), BOS, dtype=torch.long), tokens], dim=1)
