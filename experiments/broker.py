"""What the broker holds: the task ids of run messages waiting in a queue, and how many wait per queue.

`queue_lengths` is what the staff page "Workers and queues" and /metrics show as each queue's depth.

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
import os
from collections.abc import Iterable

from kombu.exceptions import OperationalError as KombuOperationalError

log = logging.getLogger(__name__)

# More messages than this in one queue are not read (the inventory would cost more than it saves);
# the reaper then treats the queue as unknown, like a transport it cannot read.
INVENTORY_LIMIT = 20_000


# How long a read (/metrics, the staff page, the reaper) waits for Redis to answer. kombu passes no
# connect timeout to redis-py and leaves socket_timeout at None, so without these a Redis that accepts
# connections but never answers (wedged, or a firewall that drops packets) blocks the caller forever.
READ_TIMEOUT_SECONDS = 2.0
INVENTORY_READ_TIMEOUT_SECONDS = 10.0  # the reaper may read up to INVENTORY_LIMIT messages


def read_options(timeout: float) -> dict[str, float]:
    """Transport options that bound every socket operation of a Redis connection by `timeout` seconds."""
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


class BrokerUnavailable(Exception):
    """The broker could not be reached; nothing should be sent to it now."""


def waiting_task_ids(queues: Iterable[str]) -> set[str] | None:
    """Task ids of the messages waiting in these queues; None if this broker cannot be read.

    Raises BrokerUnavailable when the broker does not answer.
    """
    from config.celery import app

    timeout = INVENTORY_READ_TIMEOUT_SECONDS
    with app.connection_for_read(connect_timeout=timeout, transport_options=read_options(timeout)) as conn:
        if conn.transport_cls not in ("redis", "rediss"):
            return None
        try:
            connect_once(conn, timeout)
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


def connect_once(conn, timeout: float) -> None:
    """Connect, or raise at once: kombu's default is to retry, waiting 2 s and more between tries."""
    conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=timeout)


def queue_lengths(queues: Iterable[str]) -> dict[str, int] | None:
    """How many messages wait in each queue (taken ones not counted); None if this broker cannot be read.

    Redis: the lengths of kombu's lists (one per queue and priority step). The embedded filesystem broker:
    the message files named for the queue. Raises BrokerUnavailable when the broker does not answer.
    """
    from config.celery import app

    queues = list(queues)
    timeout = READ_TIMEOUT_SECONDS
    with app.connection_for_read(connect_timeout=timeout, transport_options=read_options(timeout)) as conn:
        if conn.transport_cls == "filesystem":
            return _folder_lengths(conn.transport_options.get("data_folder_in", ""), queues)
        if conn.transport_cls not in ("redis", "rediss"):
            return None
        try:
            connect_once(conn, timeout)
            channel = conn.default_channel
            with channel.conn_or_acquire() as client, client.pipeline() as pipe:
                for queue in queues:
                    for priority in channel.priority_steps:
                        pipe.llen(channel._q_for_pri(queue, priority))
                lengths = pipe.execute()
        except (KombuOperationalError, *conn.connection_errors, *conn.channel_errors) as exc:
            raise BrokerUnavailable(str(exc)) from exc
    steps = len(lengths) // max(1, len(queues))
    return {queue: sum(lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(queues)}


def _folder_lengths(folder: str, queues: list[str]) -> dict[str, int]:
    """kombu's filesystem transport names each message `<ms>_<uuid>.<queue>.msg`."""
    counts = dict.fromkeys(queues, 0)
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise BrokerUnavailable(f"the broker folder {folder!r} cannot be read ({exc})") from exc
    for name in names:
        queue = name.partition(".")[2].removesuffix(".msg")
        if queue in counts and name.endswith(".msg"):
            counts[queue] += 1
    return counts
