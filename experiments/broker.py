"""What the broker holds: the task ids of run messages waiting in a queue.

The reaper compares queued runs with this inventory, so a run whose message the
broker lost (Redis restarted without persistence) or never got (the broker was
down when the run was triggered) is sent again within one reaper pass instead
of waiting for a long time-out. A message a worker has already taken (reserved
or running) is not counted: if its run is still queued after the grace period,
sending a second message is harmless, because a worker claims a run with a
conditional update and the later message finds nothing to do.

Only Redis, the production broker, can be read this way; for any other
transport `waiting_task_ids` answers None and the reaper falls back to resending
after `RUN_RESEND_QUEUED_AFTER_SECONDS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from kombu.exceptions import OperationalError as KombuOperationalError

log = logging.getLogger(__name__)

# More messages than this in one queue are not read (the inventory would cost more than it saves);
# the reaper then treats the queue as unknown, like a transport it cannot read.
INVENTORY_LIMIT = 20_000


class BrokerUnavailable(Exception):
    """The broker could not be reached; nothing should be sent to it now."""


def waiting_task_ids(queues: Iterable[str]) -> set[str] | None:
    """Task ids of the messages waiting in these queues; None if this broker cannot be read.

    Raises BrokerUnavailable when the broker does not answer.
    """
    from config.celery import app

    with app.connection_for_read() as conn:
        if conn.transport_cls not in ("redis", "rediss"):
            return None
        try:
            channel = conn.default_channel
            with channel.conn_or_acquire() as client:
                return _redis_waiting_ids(channel, client, queues)
        except (KombuOperationalError, *conn.connection_errors, *conn.channel_errors) as exc:
            raise BrokerUnavailable(str(exc)) from exc


def _redis_waiting_ids(channel, client, queues: Iterable[str]) -> set[str] | None:
    # kombu keeps one Redis list per queue and priority step.
    lists = [channel._q_for_pri(queue, priority) for queue in queues for priority in channel.priority_steps]
    with client.pipeline() as pipe:
        for key in lists:
            pipe.llen(key)
        lengths = pipe.execute()
    if sum(lengths) > INVENTORY_LIMIT:
        return None
    ids: set[str] = set()
    for key, length in zip(lists, lengths, strict=True):
        if not length:
            continue
        for raw in client.lrange(key, 0, -1):
            task_id = _task_id(raw)
            if task_id:
                ids.add(task_id)
    return ids


def _task_id(raw: bytes | str) -> str | None:
    """The Celery task id in a kombu message (protocol 2 puts it in the headers)."""
    try:
        message = json.loads(raw)
        return str(message["headers"]["id"])
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable message in the broker queue: %.80r", raw)
        return None
