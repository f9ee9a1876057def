"""Clean/corrupted prompt pairs: the `prompt_pairs` dataset source, and the contrast batch patching reads.

A researcher's own contrast for patching: a short list of pairs, each a clean prompt, a corrupted prompt of the
same length in tokens, the answer the clean prompt should be followed by and the wrong answer the corruption
pushes towards. The metric is the logit of the answer minus that of the wrong answer at the prompt's last
token, as Wang et al. 2022 measure IOI (the IO name minus the subject).

Token ids, as `experiments.engine.ioi` makes them (BOS first):

- a model trained here on IOI prompts reads the IOI word vocabulary: words and the marks "," and "." (every
  word must be one of `ioi.VOCABULARY`);
- a pretrained model's tokenizer reads the whole text; the answers are words after a space (GPT-2's " Mary"),
  one token each.

`encode_pairs` reports every problem with the field that has it (`pairs.3.corrupt`), so a spec check can
return them as a 400 before a run is queued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Int
from pydantic import Field, model_validator
from torch import Tensor

from experiments.engine.errors import EngineError
from experiments.engine.ioi import WORD_IDS, IOIBatch, TokenizerEncoder, WordEncoder
from experiments.engine.params import KindParams

MIN_PAIRS = 4  # the mean effect of a node over fewer pairs says little about the node
MAX_PAIRS = 256
MAX_PROMPT_CHARS = 400


class PromptPair(KindParams):
    clean: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="The prompt the model answers.")
    corrupt: str = Field(
        min_length=1, max_length=MAX_PROMPT_CHARS, description="The same prompt changed where it matters; it must "
        "have as many tokens as the clean one.",
    )  # fmt: skip
    answer: str = Field(min_length=1, max_length=40, description="The word that should follow the clean prompt.")
    wrong: str = Field(min_length=1, max_length=40, description="The word the corruption favours instead.")

    @model_validator(mode="after")
    def _two_answers(self) -> PromptPair:
        if self.answer.strip() == self.wrong.strip():
            raise ValueError("answer and wrong must differ: the metric is their logit difference")
        return self


class PromptPairs(KindParams):
    source: Literal["prompt_pairs"] = "prompt_pairs"
    pairs: list[PromptPair] = Field(
        min_length=MIN_PAIRS, max_length=MAX_PAIRS, description=f"{MIN_PAIRS} to {MAX_PAIRS} clean/corrupted pairs."
    )


@dataclass(frozen=True)
class ContrastBatch:
    """Clean and corrupted prompts as token ids (right-padded, the same positions in both), and what the metric
    reads: the logit of `answer` minus that of `wrong` at each prompt's `end`."""

    tokens: Int[Tensor, "batch pos"]
    corrupt: Int[Tensor, "batch pos"]
    answer: Int[Tensor, " batch"]
    wrong: Int[Tensor, " batch"]
    end: Int[Tensor, " batch"]
    texts: tuple[str, ...]  # the clean prompts

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def rows(self, start: int, stop: int) -> ContrastBatch:
        cut = {k: v[start:stop] for k, v in self.__dict__.items()}
        return ContrastBatch(**cut)

    def to(self, device) -> ContrastBatch:
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.__dict__.items()}
        return ContrastBatch(**moved)

    def logit_difference(self, logits: Tensor) -> Tensor:
        """Per prompt: the answer's logit minus the wrong answer's at END ([batch, pos, d_vocab] logits)."""
        rows = torch.arange(len(self), device=logits.device)
        at_end = logits[rows, self.end]
        return at_end[rows, self.answer] - at_end[rows, self.wrong]


def contrast_from_ioi(batch: IOIBatch) -> ContrastBatch:
    """IOI prompts as a contrast: clean vs ABC, answer IO, wrong answer S."""
    return ContrastBatch(batch.tokens, batch.corrupt, batch.io, batch.s, batch.end, batch.texts)


class PairProblems(EngineError):
    """Pairs that cannot be encoded: `problems` maps a field (`pairs.2.corrupt`) to why."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"data.{field}: {why}" for field, why in problems.items()))


_WORD = re.compile(r"[^\s,.]+|[,.]")


def _text_ids(text: str, encoder: WordEncoder | TokenizerEncoder) -> tuple[list[int], str | None]:
    """BOS and the text's ids, or why the text cannot be written in this vocabulary."""
    if isinstance(encoder, TokenizerEncoder):
        return [encoder.bos, *encoder.tokenizer.encode(text, add_special_tokens=False)], None
    words = _WORD.findall(text)
    unknown = [w for w in words if w not in WORD_IDS]
    if unknown:
        return [], (
            f"{', '.join(repr(w) for w in unknown[:3])} {'is' if len(unknown) == 1 else 'are'} not in the IOI word "
            "vocabulary this model reads (the IOI templates' words, names, places and objects)."
        )
    return [encoder.bos, *(WORD_IDS[w] for w in words)], None


def _answer_id(word: str, encoder: WordEncoder | TokenizerEncoder) -> tuple[int, str | None]:
    word = word.strip()
    if isinstance(encoder, WordEncoder):
        return (WORD_IDS[word], None) if word in WORD_IDS else (0, f"{word!r} is not in the IOI word vocabulary.")
    ids = encoder.word(word)
    if len(ids) != 1:
        return 0, f"{word!r} (after a space) is {len(ids)} tokens for this tokenizer; the metric needs one."
    return ids[0], None


def encode_pairs(data: PromptPairs, encoder: WordEncoder | TokenizerEncoder, *, n_ctx: int) -> ContrastBatch:
    """The pairs as a contrast batch; raises PairProblems naming each field that cannot be encoded."""
    problems: dict[str, str] = {}
    rows = []
    for i, pair in enumerate(data.pairs):
        clean, why = _text_ids(pair.clean, encoder)
        if why:
            problems[f"pairs.{i}.clean"] = why
        corrupt, why = _text_ids(pair.corrupt, encoder)
        if why:
            problems[f"pairs.{i}.corrupt"] = why
        elif clean and len(corrupt) != len(clean):
            problems[f"pairs.{i}.corrupt"] = (
                f"pair {i}: the corrupted prompt is {len(corrupt) - 1} tokens, the clean one {len(clean) - 1}; "
                "patching needs them the same length, position by position."
            )
        if len(clean) > n_ctx:
            problems[f"pairs.{i}.clean"] = f"pair {i} is {len(clean)} tokens with BOS; the model's context is {n_ctx}."
        answer, why = _answer_id(pair.answer, encoder)
        if why:
            problems[f"pairs.{i}.answer"] = why
        wrong, why = _answer_id(pair.wrong, encoder)
        if why:
            problems[f"pairs.{i}.wrong"] = why
        rows.append((clean, corrupt, answer, wrong))
    if problems:
        raise PairProblems(problems)
    length = max(len(clean) for clean, *_ in rows)
    tokens = torch.full((len(rows), length), encoder.pad, dtype=torch.long)
    corrupt = tokens.clone()
    for i, (clean_ids, corrupt_ids, _, _) in enumerate(rows):
        tokens[i, : len(clean_ids)] = torch.tensor(clean_ids)
        corrupt[i, : len(corrupt_ids)] = torch.tensor(corrupt_ids)
    return ContrastBatch(
        tokens=tokens,
        corrupt=corrupt,
        answer=torch.tensor([r[2] for r in rows]),
        wrong=torch.tensor([r[3] for r in rows]),
        end=torch.tensor([len(r[0]) - 1 for r in rows]),
        texts=tuple(pair.clean for pair in data.pairs),
    )
