"""experiments.selectors.idea_evidence: which runs count as an idea's evidence, and the words its page says them in.

The rule: each spec counts once, with the verdict of its latest succeeded run that has one.
"""

from __future__ import annotations

import pytest

from experiments.models import RunStatus
from experiments.selectors import idea_evidence
from experiments.views.evidence import no_verdict_words, verdict_counts_words
from ideas.selectors import IdeaFilters, idea_list
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, IdeaFactory, finished_run

pytestmark = pytest.mark.django_db

SUPPORTS_IF_FIVE = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}


def spec_of(idea, title="Count"):
    return ExperimentSpecFactory(idea=idea, title=title, criterion=SUPPORTS_IF_FIVE | {"otherwise": "refutes"})


def counts(idea) -> dict[str, int]:
    return idea_evidence(idea_id=idea.pk).counts


def test_an_idea_without_experiments_has_no_evidence(idea):
    evidence = idea_evidence(idea_id=idea.pk)
    assert (evidence.experiments, evidence.runs, evidence.latest) == (0, 0, None)
    assert evidence.counts == {"supports": 0, "refutes": 0, "inconclusive": 0}


def test_replicating_a_spec_does_not_stack_its_verdicts(idea):
    spec = spec_of(idea)
    finished_run(spec, "supports", minutes_ago=30)
    finished_run(spec, "supports", minutes_ago=20)
    latest = finished_run(spec, "supports", minutes_ago=10)
    evidence = idea_evidence(idea_id=idea.pk)
    assert evidence.counts == {"supports": 1, "refutes": 0, "inconclusive": 0}
    assert (evidence.experiments, evidence.runs, evidence.latest) == (1, 3, latest)


def test_a_specs_latest_verdict_replaces_its_earlier_one(idea):
    spec = spec_of(idea)
    finished_run(spec, "supports", minutes_ago=20)
    refuting = finished_run(spec, "refutes", minutes_ago=10)
    evidence = idea_evidence(idea_id=idea.pk)
    assert evidence.counts == {"supports": 0, "refutes": 1, "inconclusive": 0}
    assert evidence.latest == refuting


def test_latest_means_finished_last_not_queued_last(idea):
    spec = spec_of(idea)
    queued_first_finished_last = finished_run(spec, "supports", minutes_ago=5)
    queued_last_finished_first = finished_run(spec, "refutes", minutes_ago=10)
    assert queued_last_finished_first.pk > queued_first_finished_last.pk
    assert idea_evidence(idea_id=idea.pk).latest == queued_first_finished_last
    assert counts(idea) == {"supports": 1, "refutes": 0, "inconclusive": 0}


def test_runs_that_did_not_succeed_or_have_no_verdict_leave_the_verdict_standing(idea):
    spec = spec_of(idea)
    standing = finished_run(spec, "supports", minutes_ago=60)
    finished_run(spec, "", minutes_ago=50)  # succeeded, but no verdict (say, the metric was missing... or no criterion)
    finished_run(spec, "refutes", minutes_ago=40, status=RunStatus.FAILED, partial=True)  # not counted, even so
    finished_run(spec, "", minutes_ago=30, status=RunStatus.CANCELLED)
    ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING, progress=0.5)
    ExperimentRunFactory(spec=spec)  # queued
    evidence = idea_evidence(idea_id=idea.pk)
    assert evidence.counts == {"supports": 1, "refutes": 0, "inconclusive": 0}
    assert evidence.latest == standing
    assert evidence.runs == 6


def test_each_spec_counts_once_and_latest_is_the_newest_across_specs(idea):
    first, second, third, _unrun, no_verdict = (spec_of(idea, f"spec {n}") for n in range(5))
    finished_run(first, "refutes", minutes_ago=50)
    finished_run(first, "supports", minutes_ago=40)
    finished_run(second, "supports", minutes_ago=30)
    newest = finished_run(third, "refutes", minutes_ago=5)
    finished_run(no_verdict, "", minutes_ago=1)
    other_idea_spec = spec_of(IdeaFactory())
    finished_run(other_idea_spec, "inconclusive", minutes_ago=0)  # another idea's: not counted here

    evidence = idea_evidence(idea_id=idea.pk)
    assert evidence.counts == {"supports": 2, "refutes": 1, "inconclusive": 0}
    assert evidence.with_verdict == 3
    assert evidence.latest == newest and evidence.latest.verdict == "refutes"
    assert (evidence.experiments, evidence.runs) == (5, 5)


def test_idea_evidence_costs_two_queries_however_many_specs_and_runs(idea, django_assert_num_queries):
    for n in range(4):
        spec = spec_of(idea, f"spec {n}")
        for minutes in range(3):
            finished_run(spec, ("supports", "refutes", "inconclusive")[(n + minutes) % 3], minutes_ago=minutes + n)
    with django_assert_num_queries(2):
        evidence = idea_evidence(idea_id=idea.pk)
        assert evidence.latest.pk  # loaded, no query more
    assert evidence.with_verdict == 4


def test_the_lists_latest_verdict_is_the_evidence_latest_run(idea):
    """ideas.selectors annotates the list with the same rule without importing experiments; they must agree."""
    early, late = spec_of(idea, "early"), spec_of(idea, "late")
    finished_run(early, "supports", minutes_ago=30)
    finished_run(late, "inconclusive", minutes_ago=20)
    finished_run(early, "refutes", minutes_ago=10)
    finished_run(late, "supports", minutes_ago=5, status=RunStatus.CANCELLED, partial=True)  # does not count
    finished_run(late, "", minutes_ago=1)
    # Succeeded with no finish time (rows from before it was recorded): oldest, on SQLite and PostgreSQL alike.
    ExperimentRunFactory(spec=late, status=RunStatus.SUCCEEDED, verdict="supports", finished_at=None)
    [listed] = idea_list(filters=IdeaFilters())
    evidence = idea_evidence(idea_id=idea.pk)
    assert listed.latest_verdict == evidence.latest.verdict == "refutes"
    assert (listed.experiment_count, listed.run_count) == (evidence.experiments, evidence.runs) == (2, 6)


# --- in words ------------------------------------------------------------------------------------


def test_counts_in_words_name_experiments_once_with_each_verb_agreeing(idea):
    specs = [spec_of(idea, f"spec {n}") for n in range(6)]
    for spec, verdict in zip(specs, ["supports", "supports", "refutes", "inconclusive", "inconclusive"], strict=False):
        finished_run(spec, verdict)
    evidence = idea_evidence(idea_id=idea.pk)
    assert verdict_counts_words(evidence) == "2 experiments support, 1 refutes, 2 are inconclusive"


@pytest.mark.parametrize(
    ("verdicts", "words"),
    [
        (["supports"], "1 experiment supports"),
        (["refutes", "refutes"], "2 experiments refute"),
        (["inconclusive", "supports"], "1 experiment supports, 1 is inconclusive"),
        ([], ""),
    ],
)
def test_counts_in_words(idea, verdicts, words):
    for n, verdict in enumerate(verdicts):
        finished_run(spec_of(idea, f"spec {n}"), verdict)
    assert verdict_counts_words(idea_evidence(idea_id=idea.pk)) == words


def test_without_a_verdict_the_words_say_how_far_the_experiments_are(idea):
    spec = spec_of(idea)
    assert no_verdict_words(idea_evidence(idea_id=idea.pk)) == "1 experiment, not run yet"
    spec_of(idea, "another")
    ExperimentRunFactory(spec=spec)
    assert no_verdict_words(idea_evidence(idea_id=idea.pk)) == "2 experiments, 1 run, no verdict"
    finished_run(spec, "")
    assert no_verdict_words(idea_evidence(idea_id=idea.pk)) == "2 experiments, 2 runs, no verdict"
