"""An idea's evidence in words, for the one line under its page's title.

`experiments.selectors.idea_evidence` decides which runs count (each experiment's latest
verdict); this only says it: "2 experiments support, 1 refutes".
"""

from __future__ import annotations

from experiments.engine.wording import count
from experiments.selectors import IdeaEvidence

# verdict -> (verb after one experiment, verb after several)
VERBS = {
    "supports": ("supports", "support"),
    "refutes": ("refutes", "refute"),
    "inconclusive": ("is inconclusive", "are inconclusive"),
}


def verdict_counts_words(evidence: IdeaEvidence) -> str:
    """'2 experiments support, 1 refutes, 1 is inconclusive'; '' when no experiment has a verdict."""
    parts = []
    for verdict, n in evidence.counts.items():
        if not n:
            continue
        one, several = VERBS.get(verdict, (verdict, verdict))
        subject = str(n) if parts else count(n, "experiment")  # the noun once, at the start
        parts.append(f"{subject} {one if n == 1 else several}")
    return ", ".join(parts)


def no_verdict_words(evidence: IdeaEvidence) -> str:
    """For an idea with experiments but no verdict: '1 experiment, not run yet', '2 experiments, 3 runs, no verdict'."""
    if not evidence.runs:
        return f"{count(evidence.experiments, 'experiment')}, not run yet"
    return f"{count(evidence.experiments, 'experiment')}, {count(evidence.runs, 'run')}, no verdict"
