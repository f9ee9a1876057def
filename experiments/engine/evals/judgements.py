"""What the behavioural kinds share: checked templates and framing texts, a model's judgement between two answer
options on every item of a prompt set under each framing, and the checks made before a run is queued.

A judgement is read from the next-token log-probabilities of the two options after the answer start (" true" or
" false", " right" or " wrong"), never sampled, so a run is deterministic: the model "says" the option it gives
more probability. `option_mass` (how much of its probability the model puts on the two options at all) tells
whether the question was understood as one with those answers.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, Field

from experiments.engine.datasets import DatasetNotAvailable
from experiments.engine.errors import EngineError
from experiments.engine.evals.prompt_sets import PromptSetProblem, load_items
from experiments.engine.evals.prompts import Prompt, plain_text
from experiments.engine.evals.scoring import (
    LanguageModel,
    encode_prompt,
    language_model_tokenizer,
    option_token_ids,
)
from experiments.engine.evals.words import WordTokenizer
from experiments.engine.models import ArtifactResolver, ModelRef
from experiments.engine.params import KindParams


def template_problem(template: str, *slots: str) -> str | None:
    """Why `template` is not a text with exactly the slots named (literal braces doubled), or None."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)]
    except ValueError as exc:
        return f"is not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
    named = [(name, spec, conversion) for name, spec, conversion in fields if name is not None]
    wanted = " and ".join(f"{{{slot}}}" for slot in slots)
    if missing := [slot for slot in slots if not any(name == slot for name, _, _ in named)]:
        return f"must contain the slot {{{missing[0]}}}"
    others = sorted({name or "{}" for name, _, _ in named if name not in slots})
    if others:
        return f"has slots {', '.join(others)}; the only slots are {wanted} (write a literal brace as {{{{ or }}}})"
    if any(spec or conversion for _, spec, conversion in named):
        return f"writes {wanted} with a format or conversion; write the slots plainly"
    return None


def _framing_text(text: str) -> str:
    if not text.strip() or not text.replace("\n", "").isprintable():
        raise ValueError("must be visible text without control or invisible (zero-width) characters")
    return text


def slotted(*slots: str) -> AfterValidator:
    """A pydantic validator: the value is a template with exactly these slots, in visible text."""

    def check(template: str) -> str:
        _framing_text(template)
        if problem := template_problem(template, *slots):
            raise ValueError(problem)
        return template

    return AfterValidator(check)


FramingText = Annotated[str, AfterValidator(_framing_text)]


@dataclass(frozen=True)
class Judgements:
    """A model's choice between two answer options on each item under one framing."""

    logprobs: np.ndarray  # [item, option]: next-token log-probabilities of the first and second option

    @property
    def p_first(self) -> np.ndarray:
        """The probability of the first option given one of the two is said (a softmax over the pair)."""
        return 1.0 / (1.0 + np.exp(self.logprobs[:, 1] - self.logprobs[:, 0]))

    @property
    def first(self) -> np.ndarray:
        """Whether the model says the first option (ties count as the second)."""
        return self.logprobs[:, 0] > self.logprobs[:, 1]

    @property
    def option_mass(self) -> float:
        """The mean probability the model puts on the two options together."""
        return float(np.exp(self.logprobs).sum(axis=1).mean())


def judge(
    model: LanguageModel,
    framings: Mapping[str, Sequence[Prompt]],
    option_ids: Sequence[int],
    *,
    batch_size: int,
    report: Callable[[float, str], None],
    check_cancelled: Callable[[], None],
) -> dict[str, Judgements]:
    """Each framing's judgements of its prompts, in padded batches; progress goes to `report` as 0..1."""
    total = sum(len(prompts) for prompts in framings.values())
    done = 0
    out = {}
    for name, prompts in framings.items():
        ids = [model.prompt_ids(prompt) for prompt in prompts]

        def on_batch(scored: int, _total: int, before: int = done, framing: str = name) -> None:
            check_cancelled()
            report((before + scored) / total, f"scoring '{framing}': {before + scored}/{total} prompts")

        out[name] = Judgements(model.option_logprobs(ids, option_ids, batch_size=batch_size, on_batch=on_batch))
        done += len(prompts)
    return out


def items_problem(data: Any, runs: Any, fields: Sequence[str]) -> str | None:
    """Why the prompt set `data` cannot be read with `fields`, or None."""
    try:
        load_items(data, runs, fields=fields)
    except (PromptSetProblem, DatasetNotAvailable) as exc:
        return str(exc)
    return None


LONGEST_CHECKED = 5  # prompts per check whose token length is measured: the longest by characters


def model_problems(
    model: ModelRef,
    runs: ArtifactResolver,
    *,
    options: Mapping[str, str],
    prompts: Sequence[Prompt],
    reserve: int = 0,
    reserve_field: str = "max_new_tokens",
) -> dict[str, str]:
    """Before queueing, for the model's tokenizer: each answer option (by its params field) is one token, and no
    two are the same token; a model trained here on words knows every word of the prompts; and the longest
    prompts, with `reserve` tokens more for a reply, fit the model's context. Nothing is said of a pretrained
    model whose folder is not on this machine: the worker reports that."""
    try:
        tokenizer = language_model_tokenizer(model, runs)
    except EngineError as exc:
        return {"model": str(exc)}
    if tokenizer is None:
        return {}
    problems: dict[str, str] = {}
    seen: dict[int, str] = {}
    for field, text in options.items():
        if isinstance(tokenizer, WordTokenizer) and (unknown := tokenizer.unknown(text)):
            problems[field] = f"{text!r}: the model's word vocabulary lacks {', '.join(map(repr, unknown))}."
            continue
        ids = option_token_ids(tokenizer, text)
        if len(ids) != 1:
            problems[field] = f"{text!r} is {len(ids)} tokens for this model's tokenizer; an answer option must be one."
        elif ids[0] in seen:
            problems[field] = f"{text!r} is the same token as {seen[ids[0]]} for this model's tokenizer."
        else:
            seen[ids[0]] = field
    if isinstance(tokenizer, WordTokenizer):
        missing = list(dict.fromkeys(word for prompt in prompts for word in tokenizer.unknown(plain_text(prompt))))
        if missing:
            shown = ", ".join(repr(word) for word in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            problems["data"] = f"The model's word vocabulary lacks {shown}{more} (from the prompts)."
            return problems
    if problems:  # lengths are measured once the options are right (a judge's prompts hold an option)
        return problems
    if problem := _length_problem(model, runs, tokenizer, prompts, reserve, reserve_field):
        problems["data"] = problem
    return problems


def _length_problem(model, runs, tokenizer, prompts: Sequence[Prompt], reserve: int, reserve_field: str) -> str | None:
    # Imported here: the kinds package imports this module while it loads.
    from experiments.engine.kinds._inputs import model_shape

    try:
        shape = model_shape(model, runs)
    except EngineError:
        return None  # the platform's own check names a checkpoint it cannot find
    if shape is None or not prompts:
        return None
    longest = sorted(prompts, key=lambda prompt: len(plain_text(prompt)), reverse=True)[:LONGEST_CHECKED]
    for prompt in longest:
        length = len(encode_prompt(tokenizer, prompt))
        if length + reserve > shape.n_ctx:
            plus = f" and {reserve_field} {reserve}" if reserve else ""
            return (
                f"A prompt is {length} tokens{plus}, more than the model's context of {shape.n_ctx}: "
                f"{prompt.user[:80]!r}. Use shorter items or templates{' or fewer new tokens' if reserve else ''}."
            )
    return None


MIN_OPTION_MASS = 0.01


class JudgingParams(KindParams):
    """The params every kind that judges items by two answer options shares: the model, the paired test and its
    interval, how many items, the batch, and the least probability on the options that counts as an answer."""

    model: ModelRef = Field(
        description="The model: a pretrained causal language model from a local folder, or a checkpoint of a "
        "train_transformer run on dialogues."
    )
    test: Literal["mcnemar", "bootstrap"] = Field(
        "mcnemar", description="The paired test: McNemar's exact test (two framings) or a seeded paired bootstrap."
    )
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Confidence of the intervals.")
    max_items: int = Field(2000, ge=10, le=20_000, description="At most this many items of the set (the first ones).")
    batch_size: int = Field(32, ge=1, le=256, description="Prompts scored per forward pass.")
    min_option_mass: float = Field(
        MIN_OPTION_MASS, ge=0, le=1,
        description="Below this mean probability on the two answer options the model's choices are not taken as "
        "judgements: the test's metrics are withheld, so a criterion on them gives no verdict.",
    )  # fmt: skip


def withhold_unanswered(metrics: dict[str, float], min_option_mass: float) -> tuple[dict[str, float], str | None]:
    """The metrics a criterion may read, and None; or, when the model puts less than `min_option_mass` of its
    probability on the two options (a random model, or one that does not read the prompt as a question with those
    answers), the metrics without the test's (`effect*`, `p_value`) and a finding saying why. A model that
    does not answer is not evidence either way, and its choice between two unlikely tokens is noise."""
    mass = metrics["option_mass"]
    if mass >= min_option_mass:
        return metrics, None
    kept = {name: value for name, value in metrics.items() if not name.startswith("effect") and name != "p_value"}
    note = (
        f"Not evidence: the model puts only {mass:.2%} of its probability on the two answer options (min_option_mass "
        f"{min_option_mass:.0%}), so its choice between them is noise rather than a judgement. The test below is "
        "descriptive; its metrics are withheld, so a criterion on them gives no verdict."
    )
    return kept, note


def option_mass_warning(mass: float, min_option_mass: float) -> str | None:
    """A finding when the model answers, but puts little probability on the options."""
    if min_option_mass <= mass < 0.05:
        return (
            f"The model puts only {percent(mass)} of its probability on the two answer options: it may not read the "
            "prompt as a question with those answers (try a chat model, or other options)."
        )
    return None


def first_items(items: list[dict[str, str]], max_items: int) -> tuple[list[dict[str, str]], str]:
    """At most `max_items` items, in file order, and a note for the findings when some were left out."""
    if len(items) <= max_items:
        return items, ""
    return items[:max_items], f" (the first {max_items} of the set's {len(items)} items; max_items)"


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"
