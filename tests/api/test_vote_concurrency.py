"""Votes stay exact when many API clients vote and unvote the same ideas at once (PostgreSQL).

Each thread is one client with its own token and its own database connection.
Whatever the interleaving, every idea's score must end as imported votes plus
vote rows, and the rows must be exactly each client's last word on each idea.
"""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection

from api.services import token_issue
from api.throttles import WriteThrottle
from ideas.models import Idea, Vote
from tests.api.conftest import client_for
from tests.factories import IdeaFactory, UserFactory

CLIENTS = 50  # + the test's own connection; the server allows 100 (SHOW max_connections)
STEPS = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_keep_every_score_exact(postgres_only, monkeypatch):
    monkeypatch.setattr(WriteThrottle, "rate", "100000/min")
    ideas = [IdeaFactory(imported_votes=n) for n in (0, 7, 120)]
    users = UserFactory.create_batch(CLIENTS)
    for user in users:
        token_issue(user=user)  # before the threads: they race on votes, not on tokens
    start = threading.Barrier(CLIENTS)
    last_word: dict[tuple[int, int], bool] = {}  # (user, idea) -> voted after its last call
    failures: list[BaseException] = []
    lock = threading.Lock()

    def vote_and_unvote(index: int) -> None:
        user = users[index]
        rng = random.Random(index)
        try:
            client = client_for(user)
            start.wait(timeout=60)
            for _ in range(STEPS):
                idea = rng.choice(ideas)
                method = client.post if rng.random() < 0.6 else client.delete
                response = method(f"/api/ideas/{idea.pk}/vote/")
                assert response.status_code == 200, response.content
                with lock:
                    last_word[(user.pk, idea.pk)] = response.json()["voted"]
        except BaseException as error:  # the main thread reports it
            failures.append(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=vote_and_unvote, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failures, failures[:3]
    assert not any(thread.is_alive() for thread in threads)
    expected_rows = {key for key, voted in last_word.items() if voted}
    assert set(Vote.objects.values_list("user_id", "idea_id")) == expected_rows
    assert expected_rows, "the clients should leave some votes standing"
    for idea in Idea.objects.all():
        assert idea.score == idea.imported_votes + Vote.objects.filter(idea=idea).count(), idea
