"""The `facts` dataset: subject -> relation -> attribute triples, for causal tracing (Meng et al. 2022, "Locating
and Editing Factual Associations in GPT", ROME).

A seeded world of made-up people (the subjects, one to three name-words each, e.g. "Olin Kira") and the
relations `RELATIONS` lists (where a person lives, which language they speak, ...): each subject has one
attribute per relation (its city, its language), drawn from that relation's first `n_attributes` values. A fact is
stated by a template: a prefix, the subject, a relation phrase, then the attribute ("we know that Olin Kira lives
in | Paris"). Each relation has three phrases and there are four prefixes; for every phrase one prefix is held
out, so the held-out paraphrase templates use only words seen in training, in combinations never seen with that
phrase. A model that stored the facts (rather than whole sentences) answers the paraphrases too.

Every prompt has at least three words before the subject (the prefix) and two after it, so the positions ROME
groups its maps by (tokens before the subject, the first, middle and last subject tokens, the first token after it,
further tokens, the last token) are all there.

Three choices make a model trained here keep its facts where GPT keeps them, at the subject's last token
(docs/science.md, "Causal tracing"): the loss is read on every token, as a language model's is, so the model must
know which subject it reads at each of its tokens; subjects are prefix-free (no subject starts another), so a
subject is complete only at its last token; and "cued" training templates name the relation before the subject
and put the attribute right after it ("the city of Olin Kira | Paris"). Cued templates are never traced.

Two ways to write a fact as tokens:
- the synthetic path: a word-level vocabulary (`FactWorld.vocabulary`: BOS 0, PAD 1, then template words,
  name-words and attributes), for a model `train_transformer` trains on `{"data": {"source": "facts"}}`;
- a pretrained model's tokenizer: the fact is written as text ("we know that Olin Kira lives in" and the answer
  " Paris"), each piece tokenized in turn so the subject's tokens are known (a subject may be several tokens, a
  name-word too). The answer is the first token of the attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch
from jaxtyping import Bool, Int
from pydantic import Field, model_validator
from torch import Tensor

from experiments.engine.models import NativeConfig
from experiments.engine.params import KindParams

BOS, PAD = 0, 1

PREFIXES: tuple[tuple[str, ...], ...] = (
    ("we", "know", "that"),
    ("it", "is", "said", "that"),
    ("people", "say", "that"),
    ("as", "everyone", "knows"),
)


@dataclass(frozen=True)
class Relation:
    name: str
    phrases: tuple[tuple[str, ...], ...]  # what follows the subject; the attribute comes next
    attributes: tuple[str, ...]
    cue: tuple[str, ...]  # names the relation before the subject: "the city of" Olin Kira | Paris


def _relation(name: str, phrases: str, attributes: str, cue: str) -> Relation:
    """A relation from words: its phrases separated by '|'."""
    phrases_ = tuple(tuple(p.split()) for p in phrases.split("|"))
    return Relation(name, phrases_, tuple(attributes.split()), tuple(cue.split()))


RELATIONS: tuple[Relation, ...] = (
    _relation(
        "lives in",
        "lives in | resides in the city of | has a home in",
        "Paris London Rome Berlin Madrid Tokyo Cairo Lima Oslo Dublin Vienna Athens",
        "the city of",
    ),
    _relation(
        "speaks",
        "speaks the language | is fluent in | talks in",
        "French English Spanish German Italian Russian Arabic Dutch Greek Polish Turkish Swedish",
        "the language of",
    ),
    _relation(
        "plays",
        "plays the | is a player of the | performs on the",
        "piano guitar violin drums flute harp cello trumpet organ bass banjo oboe",
        "the instrument of",
    ),
    _relation(
        "works as",
        "works as a | is employed as a | earns a living as a",
        "doctor teacher lawyer farmer pilot nurse chef baker driver writer painter singer",
        "the job of",
    ),
    _relation(
        "likes the color",
        "likes the color | loves the colour | prefers the color",
        "red blue green yellow black white orange purple pink brown gray silver",
        "the color of",
    ),
    _relation(
        "follows",
        "often watches | is a fan of | enjoys watching",
        "football tennis golf hockey rugby cricket baseball boxing chess cycling rowing skiing",
        "the sport of",
    ),
)

NAME_WORDS: tuple[str, ...] = tuple(
    "Aldo Brin Cato Dara Elio Fenn Gala Hugo Ines Juno Kira Lars Mina Nico Olin Pia Quin Rhea Saul Tova Ugo Vera "
    "Wren Xena Yuri Zara Abel Bela Cyra Dion Edda Faro Gwen Hale Ilsa Jory Kane Lida Milo Nora Otto Pell Rosa Sami "
    "Tess Ulla Vito Wade Yara Zeno Arlo Bram Cleo Dov Enzo Fia Gus Hana Ivo Jada Kai Lumi Mars Neve".split()
)


class Facts(KindParams):
    """A seeded world of facts (see the module docstring)."""

    source: Literal["facts"] = "facts"
    n_subjects: int = Field(120, ge=4, le=4000, description="How many made-up people.")
    n_relations: int = Field(4, ge=1, le=len(RELATIONS), description="How many relations (the first ones listed).")
    n_attributes: int = Field(
        8, ge=2, le=12, description="Values each relation takes (a city out of n_attributes, ...)."
    )
    max_subject_words: int = Field(
        3, ge=1, le=3, description="Subjects have 1 to this many name-words (the lengths equally often)."
    )
    n_name_words: int = Field(
        16,
        ge=2,
        le=len(NAME_WORDS),
        description="Name-words subjects are made of: few make subjects share words and word orders ('Olin Kira', "
        "'Kira Olin'). Subjects are prefix-free, so a subject is complete only at its last token.",
    )
    cued_templates: bool = Field(
        True,
        description="Also train on templates that name the relation before the subject, the attribute right after "
        "it ('the city of Olin Kira | Paris'): the model must know a subject's attributes at its last token, as a "
        "language model must to predict what follows a name. Never traced.",
    )
    loss_on: Literal["every_token", "attribute"] = Field(
        "every_token",
        description="Training reads the loss on every token after BOS (names and templates too, as a language model "
        "does), or on the attribute only. With every token, a model must know which subject it reads by the "
        "subject's last token, and it keeps the facts there (ROME's picture); with the attribute only, the "
        "default 2-layer model gathers the subject's tokens at the last token instead.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Which world (independent of the run's seed).")

    @model_validator(mode="after")
    def _enough_names(self) -> Facts:
        possible = sum(self.n_name_words**k for k in range(1, self.max_subject_words + 1))
        if self.n_subjects > possible:
            raise ValueError(f"n_subjects: at most {possible} subjects of up to {self.max_subject_words} name-words")
        return self


# The model train_transformer and causal_tracing train on facts when a spec names none: 3 layers with MLPs; the
# default world's 84 words and 14 tokens fit, with room for more relations and name-words.
FACTS_MODEL = NativeConfig(
    n_layers=3, n_heads=4, d_model=64, d_head=16, d_mlp=256, n_ctx=16, d_vocab=136, attn_only=False
)


@dataclass(frozen=True)
class Template:
    relation: int
    prefix: tuple[str, ...]
    phrase: tuple[str, ...]  # empty for a cued template: the attribute follows the subject
    held_out: bool

    @property
    def cued(self) -> bool:
        return not self.phrase


@dataclass(frozen=True)
class FactWorld:
    subjects: tuple[tuple[str, ...], ...]  # each subject's name-words
    attributes: tuple[tuple[int, ...], ...]  # [subject][relation] -> index into RELATIONS[relation].attributes
    templates: tuple[Template, ...]
    vocabulary: tuple[str, ...]  # the synthetic path's words by id: BOS, PAD, template words, names, attributes

    def attribute(self, subject: int, relation: int) -> str:
        return RELATIONS[relation].attributes[self.attributes[subject][relation]]


MAX_DRAWS = 200  # draws of a subject of one length before it takes one more word


def _subjects(ref: Facts, generator: torch.Generator) -> list[tuple[str, ...]]:
    """Distinct, prefix-free subjects (none is the start of another, so a subject is complete only at its last
    token): lengths 1 to max_subject_words equally often, except that at most a quarter of the name-words are
    one-word subjects (each bars its word from starting a longer one); a length that cannot take another
    subject takes one more word."""
    lengths = [1 + i % ref.max_subject_words for i in range(ref.n_subjects)]
    lengths = [lengths[i] for i in torch.randperm(ref.n_subjects, generator=generator)]
    subjects: list[tuple[str, ...]] = []
    taken: set[tuple[str, ...]] = set()  # every subject and every start of one
    one_word_limit = max(1, ref.n_name_words // 4) if ref.max_subject_words > 1 else ref.n_name_words
    for length in lengths:
        if length == 1 and sum(len(s) == 1 for s in subjects) >= one_word_limit:
            length = 2
        for _ in range(MAX_DRAWS * ref.max_subject_words):
            words = tuple(NAME_WORDS[int(i)] for i in torch.randint(ref.n_name_words, (length,), generator=generator))
            starts = {words[:k] for k in range(1, length + 1)}
            if words not in taken and not starts & set(subjects):
                break
            if _ % MAX_DRAWS == MAX_DRAWS - 1:
                length = min(length + 1, ref.max_subject_words)
        else:
            raise ValueError(
                f"n_subjects: {ref.n_subjects} prefix-free subjects of up to {ref.max_subject_words} of "
                f"{ref.n_name_words} name-words could not be drawn; use fewer subjects or more name-words"
            )
        subjects.append(words)
        taken |= starts
    return subjects


@cache
def fact_world(ref: Facts) -> FactWorld:
    """The world `ref` names; the same params always give the same world."""
    generator = torch.Generator().manual_seed(ref.seed)
    subjects = _subjects(ref, generator)
    attributes = torch.randint(ref.n_attributes, (ref.n_subjects, ref.n_relations), generator=generator)
    templates = tuple(
        Template(relation=r, prefix=prefix, phrase=phrase, held_out=p == (r + j) % len(PREFIXES))
        for r in range(ref.n_relations)
        for j, phrase in enumerate(RELATIONS[r].phrases)
        for p, prefix in enumerate(PREFIXES)
    )
    if ref.cued_templates:
        templates += tuple(
            Template(relation=r, prefix=RELATIONS[r].cue, phrase=(), held_out=False) for r in range(ref.n_relations)
        )
    template_words = sorted({w for t in templates for w in (*t.prefix, *t.phrase)})
    attribute_words = [a for r in RELATIONS[: ref.n_relations] for a in r.attributes[: ref.n_attributes]]
    return FactWorld(
        subjects=tuple(subjects),
        attributes=tuple(tuple(int(a) for a in row) for row in attributes),
        templates=templates,
        vocabulary=("<bos>", "<pad>", *template_words, *NAME_WORDS[: ref.n_name_words], *attribute_words),
    )


def vocabulary_size(ref: Facts) -> int:
    return len(fact_world(ref).vocabulary)


def longest_sequence(ref: Facts) -> int:
    """Tokens in the longest synthetic sequence: BOS, prefix, subject, phrase and attribute."""
    world = fact_world(ref)
    template = max(len(t.prefix) + len(t.phrase) for t in world.templates)
    return 1 + template + max(len(s) for s in world.subjects) + 1


# -- prompts -----------------------------------------------------------------------------------------------------

# How a piece of a fact becomes token ids: (words, whether it starts the text) -> ids.
Encoder = Callable[[tuple[str, ...], bool], list[int]]


def word_encoder(world: FactWorld) -> Encoder:
    index = {word: i for i, word in enumerate(world.vocabulary)}
    return lambda words, first: [index[w] for w in words]


def tokenizer_encoder(tokenizer) -> Encoder:
    """Words as text for a pretrained tokenizer: each piece after the first starts with a space, as in a sentence.
    Pieces are tokenized once each (the same name-words recur in many prompts)."""

    @cache
    def encode(words: tuple[str, ...], first: bool) -> list[int]:
        text = " ".join(words)
        return list(tokenizer.encode(text if first else f" {text}", add_special_tokens=False))

    return encode


@dataclass(frozen=True)
class FactPrompts:
    """Prompts that stop where the attribute comes, right-padded; everything a tracing run needs to know of them."""

    tokens: Int[Tensor, "batch pos"]
    subject_start: Int[Tensor, " batch"]  # the subject's tokens are [subject_start, subject_end)
    subject_end: Int[Tensor, " batch"]
    last: Int[Tensor, " batch"]  # the position of the prompt's last token (it predicts the answer)
    answer: Int[Tensor, " batch"]  # the attribute's (first) token
    subject: Int[Tensor, " batch"]  # indices into FactWorld.subjects, FactWorld.templates
    template: Int[Tensor, " batch"]

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, rows: Tensor | Sequence[int]) -> FactPrompts:
        rows = torch.as_tensor(rows, dtype=torch.long)
        return FactPrompts(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})

    @property
    def subject_mask(self) -> Bool[Tensor, "batch pos"]:
        positions = torch.arange(self.tokens.shape[1])
        return (positions >= self.subject_start[:, None]) & (positions < self.subject_end[:, None])


def fact_prompts(
    world: FactWorld, *, held_out: bool, encode: Encoder, bos: int = BOS, pad: int = PAD, cued: bool = False
) -> FactPrompts:
    """Every (subject, template) prompt of one split: the training templates, or the held-out paraphrases; cued
    templates (the attribute right after the subject) only with `cued`."""
    rows, meta = [], []
    for t, template in enumerate(world.templates):
        if template.held_out != held_out or (template.cued and not cued):
            continue
        prefix, phrase = encode(template.prefix, True), encode(template.phrase, False) if template.phrase else []
        for s, words in enumerate(world.subjects):
            subject = encode(words, False)
            answer = encode((world.attribute(s, template.relation),), False)[0]
            start = 1 + len(prefix)
            rows.append([bos, *prefix, *subject, *phrase])
            meta.append((start, start + len(subject), len(rows[-1]) - 1, answer, s, t))
    width = max(len(row) for row in rows)
    tokens = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    columns = torch.tensor(meta).T
    return FactPrompts(tokens, *columns)


@cache
def training_sequences(ref: Facts) -> tuple[Int[Tensor, "n pos"], Int[Tensor, " n"]]:
    """Every training fact as a synthetic sequence (the prompt, then its attribute), padded to
    `longest_sequence(ref)`, and the position of each attribute."""
    world = fact_world(ref)
    prompts = fact_prompts(world, held_out=False, encode=word_encoder(world), cued=True)
    tokens = torch.full((len(prompts), longest_sequence(ref)), PAD)
    tokens[:, : prompts.tokens.shape[1]] = prompts.tokens
    rows = torch.arange(len(prompts))
    tokens[rows, prompts.last + 1] = prompts.answer
    return tokens, prompts.last + 1


def facts_batch(
    ref: Facts, *, batch: int, generator: torch.Generator
) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """A batch of training facts drawn with replacement, the mask of the tokens the loss reads (`ref.loss_on`) and
    the mask of their attribute tokens."""
    sequences, targets = training_sequences(ref)
    rows = torch.randint(len(sequences), (batch,), generator=generator)
    tokens = sequences[rows]
    attributes = torch.zeros_like(tokens, dtype=torch.bool)
    attributes[torch.arange(batch), targets[rows]] = True
    if ref.loss_on == "attribute":
        return tokens, attributes, attributes
    predicted = tokens != PAD
    predicted[:, 0] = False  # BOS is given, not predicted
    return tokens, predicted, attributes


def facts_accuracy(model: torch.nn.Module, ref: Facts, *, held_out: bool, device, limit: int = 2048) -> float:
    """Top-1 accuracy on the attributes of (at most `limit`, evenly spaced) prompts of one split."""
    world = fact_world(ref)
    prompts = fact_prompts(world, held_out=held_out, encode=word_encoder(world))
    prompts = prompts.select(torch.linspace(0, len(prompts) - 1, min(limit, len(prompts))).round().long())
    with torch.no_grad():
        logits = model(prompts.tokens.to(device))
    predicted = logits[torch.arange(len(prompts)), prompts.last.to(device)].argmax(-1).cpu()
    return float((predicted == prompts.answer).float().mean())
