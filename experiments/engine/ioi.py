"""Indirect object identification (IOI) prompts: the `ioi_prompts` dataset source.

Wang et al. 2022 ("Interpretability in the Wild") study sentences such as "When
Mary and John went to the store, John gave a drink to" → " Mary": two names are
introduced, one of them (the subject, S) is repeated, and the model must name the
other (the indirect object, IO). The order of the first two names gives two
families: ABBA (IO first, as above) and BABA ("When John and Mary went ...").
The corrupted "ABC" version of a prompt replaces the repeated subject (S2) with a
third name C, so no name repeats and the task has no answer: patching from it
shows which components carry the IOI signal.

Prompts are built from `TEMPLATES` (17, each in both orders), `NAMES` (120 first
names; every fifth, in list order, is held out of training), `PLACES` and
`OBJECTS`. Two ways to turn them into token ids:

- the word-level `VOCABULARY` (one id per word, name and punctuation mark; id 0
  is BOS, 1 is PAD), for models trained here on these prompts
  (`train_transformer` with `{"data": {"source": "ioi_prompts"}}`, config
  `IOI_MODEL`);
- a pretrained model's own tokenizer, word by word with GPT-2's leading spaces;
  only names that are one token there are used (`one_token_names`).

Training batches (`ioi_training_batch`) mix complete prompts (with the answer)
from the training names with "roll calls" (comma-separated lists of names from
*all* names, some repeated): a model sees every name, held-out ones included, but
never a held-out name in an IOI sentence, as a pretrained model has read every
name but is tested on sentences it has not seen. With `roll_call_order="repeated"`
a roll call says a short list of distinct names and then says it again in the same
order, so predicting it means finding each name's earlier copy: the model learns
that matching for every name, and its IOI circuit then works on held-out names
too (docs/science.md, "IOI").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch
from jaxtyping import Bool, Int
from pydantic import Field
from torch import Tensor

from experiments.engine.errors import EngineError
from experiments.engine.params import KindParams

BOS, PAD = 0, 1

# {IO} and {S} are the two names; {S} appears twice (S1 in the first clause, S2 as the subject of the second).
# ABBA order as written: the first clause names IO first. Every template ends on the word before the answer (END).
TEMPLATES = (
    "When {IO} and {S} went to the {PLACE} , {S} gave a {OBJECT} to",
    "Then , {IO} and {S} went to the {PLACE} . {S} gave a {OBJECT} to",
    "After {IO} and {S} arrived at the {PLACE} , {S} handed a {OBJECT} to",
    "While {IO} and {S} were working at the {PLACE} , {S} passed a {OBJECT} to",
    "Today {IO} and {S} met at the {PLACE} . Later , {S} brought a {OBJECT} to",
    "Once {IO} and {S} reached the {PLACE} , {S} offered a {OBJECT} to",
    "Yesterday {IO} and {S} had a long day at the {PLACE} . {S} sent a {OBJECT} to",
    "The {PLACE} was busy when {IO} and {S} came in . {S} showed a {OBJECT} to",
    "Last week {IO} and {S} visited the {PLACE} , and {S} lent a {OBJECT} to",
    "As {IO} and {S} left the {PLACE} , {S} threw a {OBJECT} to",
    "Friends {IO} and {S} found a {OBJECT} at the {PLACE} . {S} gave it to",
    "At the {PLACE} , {IO} and {S} talked for hours . Then {S} sold a {OBJECT} to",
    "When {IO} and {S} got to the {PLACE} , {S} told a story to",
    "After lunch , {IO} and {S} walked to the {PLACE} . {S} handed the {OBJECT} to",
    "On Sunday {IO} and {S} cleaned the {PLACE} , then {S} returned a {OBJECT} to",
    "Before {IO} and {S} opened the {PLACE} , {S} gave the keys to",
    "Since {IO} and {S} were at the {PLACE} , {S} mailed a {OBJECT} to",
)

NAMES = (
    "Aaron", "Adam", "Alan", "Alex", "Alice", "Amy", "Andrew", "Andy", "Anna", "Anthony",
    "Arthur", "Austin", "Ben", "Beth", "Bill", "Blake", "Bob", "Brad", "Brian", "Bruce",
    "Carl", "Carol", "Charles", "Charlie", "Chris", "Claire", "Colin", "Craig", "Dan", "Daniel",
    "David", "Dean", "Diana", "Donald", "Edward", "Elena", "Emily", "Emma", "Eric", "Eva",
    "Frank", "Fred", "Gary", "George", "Grace", "Grant", "Greg", "Hannah", "Harry", "Helen",
    "Henry", "Ian", "Jack", "Jacob", "Jake", "James", "Jane", "Jason", "Jeff", "Jennifer",
    "Jerry", "Jessica", "Jim", "Joe", "John", "Jordan", "Joseph", "Julia", "Justin", "Karen",
    "Kate", "Kelly", "Kevin", "Kyle", "Laura", "Leon", "Lewis", "Linda", "Lisa", "Louis",
    "Lucy", "Luke", "Marco", "Maria", "Mark", "Martin", "Mary", "Matt", "Max", "Michael",
    "Mike", "Nancy", "Nick", "Oliver", "Paul", "Peter", "Philip", "Rachel", "Ray", "Richard",
    "Rick", "Robert", "Roger", "Rose", "Ryan", "Sam", "Sarah", "Scott", "Sean", "Simon",
    "Sophie", "Steve", "Susan", "Thomas", "Tim", "Tom", "Tony", "Victoria", "Walter", "William",
)  # fmt: skip
HELD_OUT_NAMES = NAMES[4::5]  # every fifth name: never in a training IOI sentence
TRAIN_NAMES = tuple(name for name in NAMES if name not in HELD_OUT_NAMES)

PLACES = (
    "store", "garden", "school", "hospital", "station", "restaurant", "office", "park", "house", "library",
    "market", "museum", "beach", "church", "bank", "farm", "cafe", "hotel", "kitchen", "theatre",
)  # fmt: skip
OBJECTS = (
    "drink", "book", "ring", "letter", "bone", "ball", "basket", "snack", "kiss", "necklace",
    "pen", "phone", "cake", "gift", "map", "key", "bag", "coat", "flower", "computer",
)  # fmt: skip

_SLOTS = ("{IO}", "{S}", "{PLACE}", "{OBJECT}")


def _template_words() -> list[str]:
    words = {word for template in TEMPLATES for word in template.split() if word not in _SLOTS}
    return sorted(words)


VOCABULARY: tuple[str, ...] = ("<bos>", "<pad>", *_template_words(), *NAMES, *PLACES, *OBJECTS)
WORD_IDS = {word: i for i, word in enumerate(VOCABULARY)}
# Where each template names IO, S1 and S2 (word indices): every template names IO, then S, then S again.
_NAME_SLOTS = tuple(
    tuple(i for i, piece in enumerate(template.split()) if piece in ("{IO}", "{S}")) for template in TEMPLATES
)
MAX_PROMPT_WORDS = max(len(template.split()) for template in TEMPLATES) + 1  # the answer


class IOIPrompts(KindParams):
    source: Literal["ioi_prompts"] = "ioi_prompts"
    n_prompts: int = Field(256, ge=8, le=4096, description="How many prompts an evaluation uses.")
    names: Literal["held_out", "train", "all"] = Field(
        "held_out", description="Which names an evaluation's prompts use (training always uses the training names)."
    )
    order: Literal["both", "ABBA", "BABA"] = Field("both", description="Which order of the first two names.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Which prompts (independent of the run's seed).")
    roll_call_fraction: float = Field(
        0.25, ge=0, le=0.9, description="Training only: the share of rows that are roll calls of all names."
    )
    roll_call_order: Literal["random", "repeated"] = Field(
        "random",
        description="Training only: roll calls draw names at random from a pool of 6 (some repeat), or repeat a "
        "list of 2-5 distinct names in the same order (which trains matching a name to its earlier copy for every "
        "name, held-out ones included).",
    )
    train_on: Literal["all_tokens", "names"] = Field(
        "all_tokens",
        description="Training only: predict every token, or only the names (the answers and the roll calls).",
    )


@dataclass(frozen=True)
class IOIBatch:
    """IOI prompts as token ids, right-padded; clean and ABC-corrupted prompts have the same positions.

    Every position tensor is per prompt: END is the last token of the prompt (where the answer is predicted).
    """

    tokens: Int[Tensor, "batch pos"]  # BOS + the clean prompt, then PAD
    corrupt: Int[Tensor, "batch pos"]  # the same with S2 replaced by a third name C
    io: Int[Tensor, " batch"]  # the answer's token id
    s: Int[Tensor, " batch"]  # the repeated subject's token id
    c: Int[Tensor, " batch"]  # the corrupting third name's token id
    io_pos: Int[Tensor, " batch"]
    s1_pos: Int[Tensor, " batch"]
    s2_pos: Int[Tensor, " batch"]
    end: Int[Tensor, " batch"]
    template: Int[Tensor, " batch"]  # index into TEMPLATES
    abba: Bool[Tensor, " batch"]  # IO named first
    texts: tuple[str, ...]  # the clean prompts as text

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device) -> IOIBatch:
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.__dict__.items()}
        return IOIBatch(**moved)


@dataclass(frozen=True)
class Prompt:
    """One prompt as words, with where its names sit (word indices, BOS not counted)."""

    words: tuple[str, ...]
    io: str
    s: str
    c: str
    io_at: int
    s1_at: int
    s2_at: int
    template: int
    abba: bool

    @property
    def text(self) -> str:
        return " ".join(self.words).replace(" ,", ",").replace(" .", ".")


def draw_prompts(n: int, names: tuple[str, ...], *, order: str, generator: torch.Generator) -> list[Prompt]:
    """`n` prompts: a random template, order, place, object and three distinct names each."""
    if len(names) < 3:
        raise EngineError(f"IOI prompts need at least 3 names; {len(names)} are available.")
    draws = torch.randint(0, 2**31 - 1, (n, 7), generator=generator).tolist()
    prompts = []
    for template_i, order_draw, place, obj, *name_draws in draws:
        template_i %= len(TEMPLATES)
        pieces = TEMPLATES[template_i].split()
        first, second, s2_at = _NAME_SLOTS[template_i]
        abba = order == "ABBA" or (order == "both" and order_draw % 2 == 0)
        io_at, s1_at = (first, second) if abba else (second, first)
        io, s, c = _three_names(names, name_draws)
        fill = {io_at: io, s1_at: s, s2_at: s}
        slot = {"{PLACE}": PLACES[place % len(PLACES)], "{OBJECT}": OBJECTS[obj % len(OBJECTS)]}
        words = tuple(fill.get(i, slot.get(piece, piece)) for i, piece in enumerate(pieces))
        prompts.append(Prompt(words, io, s, c, io_at, s1_at, s2_at, template_i, abba))
    return prompts


def _three_names(names: tuple[str, ...], draws: list[int]) -> tuple[str, str, str]:
    first = draws[0] % len(names)
    second = (first + 1 + draws[1] % (len(names) - 1)) % len(names)
    rest = [i for i in range(len(names)) if i not in (first, second)]
    return names[first], names[second], names[rest[draws[2] % len(rest)]]


def names_for(ref: IOIPrompts) -> tuple[str, ...]:
    return {"held_out": HELD_OUT_NAMES, "train": TRAIN_NAMES, "all": NAMES}[ref.names]


# -- token ids ----------------------------------------------------------------------------------------------------


class WordEncoder:
    """The word-level vocabulary of models trained here on IOI prompts."""

    bos, pad = BOS, PAD

    def __init__(self, d_vocab: int) -> None:
        if d_vocab < len(VOCABULARY):
            raise EngineError(
                f"The model's vocabulary has {d_vocab} ids; IOI prompts need {len(VOCABULARY)} "
                f"(train a model on ioi_prompts, for example with train_transformer's IOI config)."
            )

    def word(self, word: str) -> list[int]:
        return [WORD_IDS[word]]

    def name(self, name: str) -> int:
        return WORD_IDS[name]

    def usable_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return names


class TokenizerEncoder:
    """A pretrained tokenizer, word by word: names carry GPT-2's leading space and must be one token."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0
        pad = tokenizer.pad_token_id
        self.pad = pad if pad is not None else (tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0)

    def word(self, word: str) -> list[int]:
        piece = word if word in (",", ".") else f" {word}"
        return self.tokenizer.encode(piece, add_special_tokens=False)

    def name(self, name: str) -> int:
        ids = self.word(name)
        if len(ids) != 1:
            raise EngineError(f"{name!r} is {len(ids)} tokens for this tokenizer, not one.")
        return ids[0]

    @cached_property
    def _one_token(self) -> frozenset[str]:
        unknown = self.tokenizer.unk_token_id
        return frozenset(name for name in NAMES if len(ids := self.word(name)) == 1 and ids[0] != unknown)

    def usable_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name for name in names if name in self._one_token)


def encoder_for(model) -> WordEncoder | TokenizerEncoder:
    """How prompts become ids for this model: its tokenizer if it has one, else the word-level vocabulary."""
    tokenizer = getattr(model, "tokenizer", None)
    return TokenizerEncoder(tokenizer) if tokenizer is not None else WordEncoder(model.cfg.d_vocab)


def one_token_names(tokenizer, names: tuple[str, ...] = NAMES) -> tuple[str, ...]:
    """The names a pretrained tokenizer writes as one token (with a leading space)."""
    return TokenizerEncoder(tokenizer).usable_names(names)


def encode_prompts(prompts: list[Prompt], encoder, *, n_ctx: int) -> IOIBatch:
    """Token ids of the prompts (answer not included), BOS first, right-padded to the longest."""
    rows, corrupt_rows, spots = [], [], []
    for prompt in prompts:
        ids, corrupt, at = [encoder.bos], [encoder.bos], {}
        for i, word in enumerate(prompt.words):
            if i in (prompt.io_at, prompt.s1_at, prompt.s2_at):
                at[i] = len(ids)
                ids.append(encoder.name(word))
                corrupt.append(encoder.name(prompt.c) if i == prompt.s2_at else ids[-1])
            else:
                piece = encoder.word(word)
                ids.extend(piece)
                corrupt.extend(piece)
        rows.append(ids)
        corrupt_rows.append(corrupt)
        spots.append((at[prompt.io_at], at[prompt.s1_at], at[prompt.s2_at], len(ids) - 1))
    length = max(len(r) for r in rows)
    if length > n_ctx:
        raise EngineError(f"IOI prompts are up to {length} tokens for this model; its context is {n_ctx}.")
    tokens = torch.full((len(rows), length), encoder.pad, dtype=torch.long)
    corrupt = tokens.clone()
    for i, (row, bad) in enumerate(zip(rows, corrupt_rows, strict=True)):
        tokens[i, : len(row)] = torch.tensor(row)
        corrupt[i, : len(bad)] = torch.tensor(bad)
    positions = torch.tensor(spots, dtype=torch.long)
    return IOIBatch(
        tokens=tokens,
        corrupt=corrupt,
        io=torch.tensor([encoder.name(p.io) for p in prompts]),
        s=torch.tensor([encoder.name(p.s) for p in prompts]),
        c=torch.tensor([encoder.name(p.c) for p in prompts]),
        io_pos=positions[:, 0],
        s1_pos=positions[:, 1],
        s2_pos=positions[:, 2],
        end=positions[:, 3],
        template=torch.tensor([p.template for p in prompts]),
        abba=torch.tensor([p.abba for p in prompts]),
        texts=tuple(p.text for p in prompts),
    )


def ioi_batch(ref: IOIPrompts, model, *, device="cpu") -> IOIBatch:
    """The evaluation prompts `ref` names, as ids for `model` (its tokenizer, or the word vocabulary)."""
    return prompts_for(ref, encoder_for(model), n_ctx=model.cfg.n_ctx).to(device)


def prompts_for(ref: IOIPrompts, encoder, *, n_ctx: int) -> IOIBatch:
    names = encoder.usable_names(names_for(ref))
    if len(names) < 3:
        raise EngineError(
            f"Only {len(names)} of the {len(names_for(ref))} {ref.names.replace('_', '-')} names are one token for "
            f"this tokenizer; IOI prompts need at least 3."
        )
    prompts = draw_prompts(ref.n_prompts, names, order=ref.order, generator=torch.Generator().manual_seed(ref.seed))
    return encode_prompts(prompts, encoder, n_ctx=n_ctx)


# -- training -----------------------------------------------------------------------------------------------------


def ioi_training_batch(
    ref: IOIPrompts, *, batch: int, length: int, d_vocab: int, generator: torch.Generator
) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """A training batch in the word vocabulary: complete prompts with the training names (the answer appended),
    and roll calls of all names.

    Returns the tokens, the mask of the answers (the IO name each prompt ends with) and the mask of the tokens
    whose prediction is trained: every real token (not PAD) when `ref.train_on` is "all_tokens"; with
    "names", only the answers and, in roll calls, the names.
    """
    encoder = WordEncoder(d_vocab)
    if length < MAX_PROMPT_WORDS + 1:
        raise EngineError(f"IOI training needs model.n_ctx >= {MAX_PROMPT_WORDS + 1}.")
    n_roll = round(batch * ref.roll_call_fraction)
    prompts = draw_prompts(batch - n_roll, TRAIN_NAMES, order=ref.order, generator=generator)
    tokens = torch.full((batch, length), PAD, dtype=torch.long)
    answer = torch.zeros(batch, length, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids = [BOS, *(encoder.word(w)[0] for w in prompt.words), WORD_IDS[prompt.io]]
        tokens[row, : len(ids)] = torch.tensor(ids)
        answer[row, len(ids) - 1] = True
    comma, names = WORD_IDS[","], torch.tensor([WORD_IDS[n] for n in NAMES])
    for row in range(len(prompts), batch):
        if ref.roll_call_order == "repeated":
            # "Anna , Bob , Carl , Anna , Bob , Carl , ...": a list of distinct names said again in the same order.
            size = int(torch.randint(2, 6, (1,), generator=generator))
            called = names[torch.randperm(len(names), generator=generator)[:size]].repeat(length)[: length // 2]
        else:
            # "Anna , Bob , Anna , ...": names drawn from a short list so that some repeat.
            pool = names[torch.randperm(len(names), generator=generator)[:6]]
            called = pool[torch.randint(0, len(pool), (length // 2,), generator=generator)]
        ids = torch.stack([called, torch.full_like(called, comma)], dim=1).flatten()[: length - 1]
        tokens[row, 0] = BOS
        tokens[row, 1:] = ids
    if ref.train_on == "names":
        trained = answer.clone()
        trained[len(prompts) :, 1::2] = True
    else:
        trained = tokens != PAD
    return tokens, answer, trained


def logit_difference(logits_at_end: Tensor, batch: IOIBatch) -> Tensor:
    """Per prompt: the IO logit minus the S logit at END (nats of log-odds between the two names)."""
    rows = torch.arange(len(batch), device=logits_at_end.device)
    return logits_at_end[rows, batch.io] - logits_at_end[rows, batch.s]


def end_logits(logits: Tensor, batch: IOIBatch) -> Tensor:
    """[batch, d_vocab] logits at each prompt's END."""
    return logits[torch.arange(len(batch), device=logits.device), batch.end]


@torch.no_grad()
def ioi_performance(model, batch: IOIBatch) -> tuple[float, float]:
    """Mean logit difference (IO − S) at END and accuracy (the share of prompts where IO's logit is above S's)."""
    logits = end_logits(model(batch.tokens), batch)
    diff = logit_difference(logits, batch)
    return float(diff.mean()), float((diff > 0).float().mean())
