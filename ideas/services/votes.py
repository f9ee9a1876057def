"""Votes: one per user and idea, and a score that stays exact under concurrency.

The score is imported votes + live vote rows. Each service changes the vote row
and the score in one transaction, and moves the score only by the number of
rows it actually inserted or deleted: a duplicate insert fails on the unique
constraint (and adds nothing), a delete that finds no row subtracts nothing.
The UPDATE ... SET score = score + 1 is evaluated by the database under the
row lock, so concurrent voters never overwrite each other's increments.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from ideas.models import Idea, Vote


@dataclass(frozen=True)
class VoteResult:
    score: int
    voted: bool


def _ensure_open_to_votes(idea: Idea) -> None:
    if idea.is_archived:
        raise ValidationError({"idea": "This idea is archived; archived ideas cannot be voted on."})


def _current_score(idea: Idea) -> int:
    return Idea.objects.values_list("score", flat=True).get(pk=idea.pk)


@transaction.atomic
def idea_vote(*, idea: Idea, user) -> VoteResult:
    """Add the user's vote. Voting twice is a no-op."""
    _ensure_open_to_votes(idea)
    try:
        with transaction.atomic():  # a savepoint, so a duplicate leaves the outer transaction usable
            Vote.objects.create(user=user, idea=idea)
    except IntegrityError:
        pass  # already voted
    else:
        Idea.objects.filter(pk=idea.pk).update(score=F("score") + 1)
    return VoteResult(score=_current_score(idea), voted=True)


@transaction.atomic
def idea_unvote(*, idea: Idea, user) -> VoteResult:
    """Remove the user's vote, if there is one."""
    _ensure_open_to_votes(idea)
    deleted, _ = Vote.objects.filter(idea=idea, user=user).delete()
    if deleted:
        Idea.objects.filter(pk=idea.pk).update(score=F("score") - deleted)
    return VoteResult(score=_current_score(idea), voted=False)
