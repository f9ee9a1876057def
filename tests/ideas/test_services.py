"""The catalogue's write services: ideas, status changes, links, votes."""

from __future__ import annotations

import random
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from ideas.models import IdeaKind, IdeaStatus, StatusChange, Vote
from ideas.services import (
    idea_create,
    idea_link_add,
    idea_set_status,
    idea_unvote,
    idea_update,
    idea_vote,
)
from tests.factories import IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_create_gives_unique_slugs_and_tags(user):
    first = idea_create(author=user, title="Induction heads form", kind=IdeaKind.HYPOTHESIS, tags=["interp", "TL"])
    second = idea_create(author=user, title="Induction heads  form", kind=IdeaKind.HYPOTHESIS)
    assert first.slug == "induction-heads-form"
    assert second.slug == "induction-heads-form-2"
    assert second.title == "Induction heads form"
    assert sorted(t.slug for t in first.tags.all()) == ["interp", "tl"]
    assert first.status == IdeaStatus.OPEN and first.score == 0 and first.author == user


@pytest.mark.parametrize(
    ("title", "kind", "field"),
    [("", IdeaKind.HYPOTHESIS, "title"), ("x" * 301, IdeaKind.HYPOTHESIS, "title"), ("Fine", "theory", "kind")],
)
def test_create_refuses_bad_input_naming_the_field(user, title, kind, field):
    with pytest.raises(ValidationError) as excinfo:
        idea_create(author=user, title=title, kind=kind)
    assert field in excinfo.value.message_dict


def test_update_is_for_author_or_staff(user, staff):
    idea = IdeaFactory(author=user)
    idea_update(idea=idea, user=user, title="Edited by author")
    idea_update(idea=idea, user=staff, body="Edited by staff")
    idea.refresh_from_db()
    assert (idea.title, idea.body) == ("Edited by author", "Edited by staff")
    with pytest.raises(PermissionDenied):
        idea_update(idea=idea, user=UserFactory(), title="Not mine")


def test_update_refuses_a_kind_the_current_status_does_not_fit(user):
    idea = IdeaFactory(author=user, kind=IdeaKind.HYPOTHESIS, status=IdeaStatus.SUPPORTED)
    with pytest.raises(ValidationError) as excinfo:
        idea_update(idea=idea, user=user, kind=IdeaKind.OPEN_ENDED)
    assert "status" in excinfo.value.message_dict


def test_status_change_is_recorded_with_who_and_why(staff):
    idea = IdeaFactory(kind=IdeaKind.HYPOTHESIS)
    change = idea_set_status(idea=idea, status=IdeaStatus.IN_PROGRESS, user=staff, reason=" started ")
    assert (change.from_status, change.to_status, change.changed_by, change.reason) == (
        "open",
        "in_progress",
        staff,
        "started",
    )
    idea.refresh_from_db()
    assert idea.status == IdeaStatus.IN_PROGRESS
    assert idea_set_status(idea=idea, status=IdeaStatus.IN_PROGRESS, user=staff) is None
    assert StatusChange.objects.filter(idea=idea).count() == 1


def test_status_must_fit_the_kind_and_needs_staff(user, staff):
    open_ended = IdeaFactory(kind=IdeaKind.OPEN_ENDED)
    with pytest.raises(ValidationError) as excinfo:
        idea_set_status(idea=open_ended, status=IdeaStatus.SUPPORTED, user=staff)
    assert "status" in excinfo.value.message_dict
    hypothesis = IdeaFactory(kind=IdeaKind.HYPOTHESIS)
    with pytest.raises(ValidationError):
        idea_set_status(idea=hypothesis, status=IdeaStatus.RESOLVED, user=staff)
    with pytest.raises(PermissionDenied):
        idea_set_status(idea=hypothesis, status=IdeaStatus.REFUTED, user=user)
    assert not StatusChange.objects.exists()


def test_links_are_typed_idempotent_and_never_to_self():
    a, b = IdeaFactory(), IdeaFactory()
    assert idea_link_add(source=a, target=b, link_type="expands") == idea_link_add(
        source=a, target=b, link_type="expands"
    )
    with pytest.raises(ValidationError):
        idea_link_add(source=a, target=a)
    with pytest.raises(ValidationError):
        idea_link_add(source=a, target=b, link_type="cites")


def test_vote_twice_is_a_no_op_and_unvote_removes_it(user):
    idea = IdeaFactory(imported_votes=6)
    assert idea_vote(idea=idea, user=user).score == 7
    result = idea_vote(idea=idea, user=user)
    assert (result.score, result.voted) == (7, True)
    assert Vote.objects.filter(idea=idea).count() == 1
    result = idea_unvote(idea=idea, user=user)
    assert (result.score, result.voted) == (6, False)
    assert idea_unvote(idea=idea, user=user).score == 6


def test_one_vote_per_user_is_a_database_constraint(user, idea):
    Vote.objects.create(user=user, idea=idea)
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(user=user, idea=idea)


def test_archived_ideas_cannot_be_voted_on(user):
    idea = IdeaFactory(status=IdeaStatus.ARCHIVED, imported_votes=2)
    with pytest.raises(ValidationError) as excinfo:
        idea_vote(idea=idea, user=user)
    assert "archived" in str(excinfo.value)
    idea.refresh_from_db()
    assert idea.score == 2 and not Vote.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_score_stays_exact_under_concurrent_votes_and_unvotes(postgres_only):
    """Many users vote and unvote the same ideas at once; every score must equal imported + rows."""
    ideas = [IdeaFactory(imported_votes=n) for n in (3, 0, 11)]
    voters = [UserFactory() for _ in range(24)]
    barrier = threading.Barrier(len(voters))
    errors: list[BaseException] = []

    def voter(user, seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(15):
                idea = rng.choice(ideas)
                (idea_vote if rng.random() < 0.6 else idea_unvote)(idea=idea, user=user)
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=voter, args=(u, i)) for i, u in enumerate(voters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors, errors
    total_rows = 0
    for idea in ideas:
        idea.refresh_from_db()
        rows = Vote.objects.filter(idea=idea).count()
        total_rows += rows
        assert idea.score == idea.imported_votes + rows
    assert total_rows > 0
