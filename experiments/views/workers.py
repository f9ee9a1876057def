"""/staff/workers/ "Workers and queues": what people open Flower for, inside the app (staff only).

Live workers from their presence records, what each is running, each queue's depth in the broker and in
the database, and a warning for a queue whose runs wait with no live worker to take them. The page reloads
itself every REFRESH_SECONDS. It reads `experiments.monitoring`, as /metrics does, so both say the same.
Anonymous visitors are sent to log in; signed-in people who are not staff get the 403 page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from experiments.monitoring import queue_states, worker_states
from experiments.views.presenters import duration_words

REFRESH_SECONDS = 10


@login_required
def workers_page(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can see the workers and queues.")
    workers = worker_states()
    queues, broker_trouble = queue_states(workers)
    context = {
        "workers": [
            {
                "state": state,
                "age": duration_words(state.age_seconds),
                "running": [(run, round(run.progress * 100)) for run in state.running],
            }
            for state in workers
        ],
        "live_count": sum(not state.stale for state in workers),
        "queues": [{"state": queue, "oldest": duration_words(queue.oldest_queued_seconds)} for queue in queues],
        "broker_trouble": broker_trouble,
        "refresh_seconds": REFRESH_SECONDS,
        "gone_after": duration_words(settings.WORKER_GONE_AFTER_SECONDS),
    }
    return render(request, "experiments/workers.html", context)
