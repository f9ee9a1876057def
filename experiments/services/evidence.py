"""Evidence: a finished run's verdict, and the hypothesis status that follows from all verdicts.

A spec's pre-registered criterion says which metric to compare with what, and
what meeting it means. The status of a hypothesis follows its succeeded runs'
verdicts: `supported` when some support it and none refutes, `refuted` in the
mirror case, `inconclusive` when they disagree or none decides. Each automatic
change is a StatusChange naming the run; a staff override stands until the
next verdict arrives.
"""

from __future__ import annotations

import operator
from typing import Any

from experiments.models import ExperimentRun, RunStatus, Verdict
from ideas.models import Idea, IdeaKind, IdeaStatus, StatusChange
from ideas.services import idea_set_status

COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def verdict_for(criterion: dict[str, Any] | None, metrics: dict[str, Any]) -> str:
    """The verdict of a run with these metrics; '' without a criterion, inconclusive without the metric."""
    if not criterion:
        return ""
    value = metrics.get(criterion["metric"])
    if value is None:
        return Verdict.INCONCLUSIVE
    met = COMPARE[criterion["comparator"]](float(value), criterion["threshold"])
    return criterion["if_met"] if met else criterion["otherwise"]


def status_from_verdicts(verdicts: set[str]) -> str | None:
    if not verdicts:
        return None
    if Verdict.SUPPORTS in verdicts and Verdict.REFUTES not in verdicts:
        return IdeaStatus.SUPPORTED
    if Verdict.REFUTES in verdicts and Verdict.SUPPORTS not in verdicts:
        return IdeaStatus.REFUTED
    return IdeaStatus.INCONCLUSIVE


def idea_status_follow_verdicts(*, idea: Idea, run: ExperimentRun) -> StatusChange | None:
    """Move a hypothesis to the status its verdicts imply, naming `run` (the newest verdict) as the cause."""
    # The idea as it is now, locked: it may have been archived or re-kinded while the run was going.
    idea = Idea.objects.select_for_update().get(pk=idea.pk)
    if idea.kind != IdeaKind.HYPOTHESIS or idea.status == IdeaStatus.ARCHIVED:
        return None
    verdicts = set(
        ExperimentRun.objects.filter(spec__idea=idea, status=RunStatus.SUCCEEDED)
        .exclude(verdict="")
        .values_list("verdict", flat=True)
    )
    target = status_from_verdicts(verdicts)
    if target is None:
        return None
    counts = ", ".join(sorted(verdicts))
    return idea_set_status(
        idea=idea,
        status=target,
        user=None,
        run=run,
        reason=f"Run {run.pk} ({run.spec.title}) gave the verdict '{run.verdict}'; verdicts so far: {counts}.",
    )
