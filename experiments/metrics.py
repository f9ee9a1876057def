"""Runs, queues and workers for /metrics, read from the database and the broker when Prometheus scrapes.

Collected at scrape rather than observed in the workers: a worker process has no HTTP endpoint of its own,
and counts kept in memory would reset with each restart and differ between web processes. The database
holds every run already, so every web process answers the same numbers, and run durations cover every run
ever finished (a histogram whose counts only grow, as Prometheus expects, as long as runs are not deleted).

The metric names (README "Monitoring"):
- ideas_runs{status}: runs in each state.
- ideas_queue_messages{queue}: messages waiting in the broker (absent when the broker cannot be read).
- ideas_queue_queued_runs{queue}, ideas_queue_oldest_queued_age_seconds{queue}: queued runs in the database.
- ideas_queue_consumers{queue}: live workers consuming the queue.
- ideas_broker_up: 1 when the broker answered this scrape.
- ideas_run_duration_seconds{kind,status}: histogram of finished runs' durations.
- ideas_worker_last_heartbeat_timestamp_seconds{worker}, ideas_worker_concurrency{worker},
  ideas_worker_torch_threads{worker}, ideas_worker_running_runs{worker}: from the workers' presence records.
- ideas_database_up: 0 when the database did not answer (the metrics above are then left out).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from config.availability import DATABASE_UNAVAILABLE
from experiments.monitoring import (
    DURATION_BUCKETS,
    queue_states,
    run_counts_by_status,
    run_duration_stats,
    worker_states,
)

log = logging.getLogger(__name__)


class RunsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._from_database())
        except DATABASE_UNAVAILABLE as exc:
            log.warning("metrics: the database is unavailable (%s)", exc)
            yield GaugeMetricFamily("ideas_database_up", "1 when the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("ideas_database_up", "1 when the database answered this scrape.", value=1)
        yield from metrics

    def _from_database(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("ideas_runs", "Runs in each state.", labels=["status"])
        for status, count in run_counts_by_status().items():
            runs.add_metric([status], count)
        yield runs

        workers = worker_states()
        queues, trouble = queue_states(workers)
        yield GaugeMetricFamily("ideas_broker_up", "1 when the broker answered this scrape.", value=0 if trouble else 1)
        messages = GaugeMetricFamily("ideas_queue_messages", "Messages waiting in the broker.", labels=["queue"])
        queued = GaugeMetricFamily("ideas_queue_queued_runs", "Runs queued in the database.", labels=["queue"])
        oldest = GaugeMetricFamily(
            "ideas_queue_oldest_queued_age_seconds", "Age of the oldest queued run (0 when none).", labels=["queue"]
        )
        consumers = GaugeMetricFamily("ideas_queue_consumers", "Live workers consuming the queue.", labels=["queue"])
        for queue in queues:
            if queue.broker_messages is not None:
                messages.add_metric([queue.name], queue.broker_messages)
            queued.add_metric([queue.name], queue.queued_runs)
            oldest.add_metric([queue.name], queue.oldest_queued_seconds or 0.0)
            consumers.add_metric([queue.name], len(queue.consumers))
        yield from (messages, queued, oldest, consumers)

        durations = HistogramMetricFamily(
            "ideas_run_duration_seconds",
            "Finished runs' durations, by kind and final state.",
            labels=["kind", "status"],
        )
        for stats in run_duration_stats():
            buckets = [(str(float(bound)), n) for bound, n in zip(DURATION_BUCKETS, stats.bucket_counts, strict=True)]
            buckets.append(("+Inf", stats.count))
            durations.add_metric([stats.kind, stats.status], buckets, sum_value=stats.total_seconds)
        yield durations

        heartbeat = GaugeMetricFamily(
            "ideas_worker_last_heartbeat_timestamp_seconds",
            "When the worker last recorded its presence (Unix time).",
            labels=["worker"],
        )
        concurrency = GaugeMetricFamily("ideas_worker_concurrency", "Runs the worker takes at once.", labels=["worker"])
        threads = GaugeMetricFamily("ideas_worker_torch_threads", "Torch threads per run process.", labels=["worker"])
        running = GaugeMetricFamily("ideas_worker_running_runs", "Runs the worker is running.", labels=["worker"])
        for state in workers:
            name = state.presence.worker
            heartbeat.add_metric([name], state.presence.seen_at.timestamp())
            concurrency.add_metric([name], state.presence.concurrency)
            threads.add_metric([name], state.presence.torch_threads)
            running.add_metric([name], len(state.running))
        yield from (heartbeat, concurrency, threads, running)
