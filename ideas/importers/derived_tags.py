"""Tags read from an idea's words, for the seed catalogue (which names none).

`TAG_RULES` is the table: a tag's name, and the words that point to it (regular
expressions, matched case-insensitively and as whole words). An idea gets a
tag when the match is clear:

- one of the tag's words is in the title (a title says what the idea is about), or
- the tag's words appear at least twice in the body, counted together (one
  passing mention, "Looking inside a LLM with many checkpoints", is not enough).

Link targets and bare URLs are not read: a link's address names the page it
points at, not the idea ("...a-mechanistic-interpretability-analysis-of-grokking").
Only what the catalogue clearly holds has a rule; a topic it mentions once
(reward hacking, in one "Related work" list) has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BODY_MENTIONS_NEEDED = 2
# A markdown link's or image's target, and an address written out.
ADDRESS = re.compile(r"\]\([^)\s]*\)|https?://\S+")


@dataclass(frozen=True)
class TagRule:
    name: str
    words: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(r"\b(?:" + "|".join(self.words) + r")\b", re.IGNORECASE)


TAG_RULES: tuple[TagRule, ...] = (
    TagRule(
        "interpretability",
        (
            r"interpretab\w*",
            r"mechanistic",
            r"circuits?",
            r"induction heads?",
            r"attention (?:heads?|patterns?)",
            r"neurons?",
            r"activations?",
            r"causal tracing",
        ),
    ),
    TagRule("IOI", (r"IOI", r"indirect object identification")),
    TagRule("grokking", (r"grok(?:s|ked|king)?",)),
    TagRule("training dynamics", (r"training dynamics", r"learning dynamics", r"phase changes?", r"grokking")),
    # "LLM" and not "language model": interpretability ideas study language models too,
    # while the catalogue's LLM ideas are claims about how LLMs behave, to be tested.
    TagRule("LLM evaluations", (r"LLMs?", r"red[- ]teaming")),
    TagRule("truthfulness", (r"truthful(?:ness)?", r"honesty")),
    TagRule("red teaming", (r"red[- ]teaming", r"adversarial (?:attacks?|examples?|prompts?)", r"jailbreak\w*")),
    TagRule(
        "inner alignment",
        (
            r"inner[- ]alignment",
            r"mesa[- ]optimi[sz]\w*",
            r"goal misgeneralization",
            r"deceptive alignment",
            r"gradient hacking",
        ),
    ),
    TagRule("deception", (r"decepti(?:on|ve)", r"deceiv\w*")),
    # The four problems of "Alignment for Advanced Machine Learning Systems"
    # (Taylor et al. 2016, MIRI) the catalogue holds, and the agenda's usual words.
    TagRule(
        "agent foundations",
        (
            r"mild optimi[sz]ation",
            r"impact measures?",
            r"low-impact",
            r"conservative concepts?",
            r"environment(?:al)? goals?",
            r"AIXI",
            r"decision theory",
            r"embedded agen(?:cy|ts?)",
            r"corrigib\w*",
        ),
    ),
)


def _readable(text: str) -> str:
    return ADDRESS.sub(" ", text)


def derive_tags(title: str, body: str, rules: tuple[TagRule, ...] = TAG_RULES) -> tuple[str, ...]:
    """The names of the tags `rules` give an idea with this title and body, in table order."""
    title, body = _readable(title), _readable(body)
    return tuple(
        rule.name
        for rule in rules
        if rule.pattern.search(title) or len(rule.pattern.findall(body)) >= BODY_MENTIONS_NEEDED
    )
