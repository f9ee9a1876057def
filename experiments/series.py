"""A running run's step series a piece at a time: what `GET /api/runs/<id>/?series_since=<step>` answers.

A page polling a run once a second would otherwise fetch every point each time (tens of kilobytes that
grow with the run). A step alone cannot be a complete cursor in this engine, so the answer carries what a
client needs to notice when it holds something else than the run:

- Points are kept per series; within one series the steps only grow. Across series they do not: a
  composite run's parts each count steps from 0 (`L3/loss` starts after `L2/loss` reached its last step),
  and a kind may log a new series over earlier steps (grokking's progress measures, computed at each
  checkpoint after training). So the answer also gives every series' point count (`series_counts`): a
  client whose own counts disagree after adding the new points missed some (or the worker thinned a long
  series, see `MAX_SERIES_POINTS`) and fetches the run once without `series_since`.
- A retried attempt starts its series over. `series_attempt` names the attempt the points belong to; a
  client that says which attempt it holds (`series_attempt` in the query) gets the whole series back with
  `series_reset` when that is not the run's, so two attempts' points never mix.
- A finished part's series do not change any more: they are left out (their counts stay in
  `series_counts`), and `series_next_since` is the last step among the series still being written, the
  cursor to send next.
"""

from __future__ import annotations

from typing import Any

from experiments.models import ExperimentRun

Series = dict[str, list[list[Any]]]


def series_attempt(run: ExperimentRun) -> int:
    """The attempt whose points `run.series` holds; 0 while no attempt holds any.

    A run gets its series when an attempt claims it (`started_at` is set then, the series cleared); a lost
    attempt's run is queued again with its series cleared and `started_at` unset, and keeps its `attempts`
    until the next claim counts one more.
    """
    return run.attempts if run.started_at is not None else 0


def _part_key(name: str) -> str | None:
    """The part a series belongs to ("L2/loss" -> "L2"), or None for a run-wide series."""
    key, slash, _ = name.partition("/")
    return key if slash else None


def _finished_parts(run: ExperimentRun) -> set[str]:
    return {part["key"] for part in run.parts or [] if isinstance(part, dict) and "key" in part}


def series_next_since(series: Series, finished_parts: set[str]) -> int:
    """The last step among the series still being written (0 if none is): where the next poll starts."""
    steps = [points[-1][0] for name, points in series.items() if points and _part_key(name) not in finished_parts]
    return max(steps, default=0)


def series_cursor(run: ExperimentRun) -> dict[str, int]:
    """Where a client holding `run.series` as it is now polls from: its `series_attempt` and `series_since`
    (the run page embeds the series with this, so its first poll already asks only for new points)."""
    return {"attempt": series_attempt(run), "since": series_next_since(run.series or {}, _finished_parts(run))}


def series_poll(run: ExperimentRun, *, since: int, attempt: int | None = None) -> dict[str, Any]:
    """The run's series from step `since` on, for a client holding the points of `attempt` (None: unknown).

    Returns the response fields: `series` (points with a step above `since`, without finished parts'
    series and series with nothing new; the whole series when `series_reset`), `series_since`,
    `series_attempt`, `series_reset`, `series_counts` and `series_next_since`.
    """
    stored: Series = run.series or {}
    current = series_attempt(run)
    finished = _finished_parts(run)
    reset = attempt is not None and attempt != current
    if reset:
        series = stored
    else:
        series = {}
        for name, points in stored.items():
            if _part_key(name) in finished:
                continue
            new = [point for point in points if point[0] > since]
            if new:
                series[name] = new
    return {
        "series": series,
        "series_since": since,
        "series_attempt": current,
        "series_reset": reset,
        "series_counts": {name: len(points) for name, points in stored.items()},
        "series_next_since": series_next_since(stored, finished),
    }
