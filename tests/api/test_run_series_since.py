"""Polling a run's step series a piece at a time: `GET /api/runs/<id>/?series_since=<step>` (experiments.series).

Only new points come back; a retried attempt's series never mixes with the one a client holds; a finished part's
series stay out; every badly written cursor is a 400 naming it; without the parameter nothing changes.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from experiments.models import RunStatus
from experiments.services import run_execute, run_worker_lost
from tests.api.conftest import assert_error, client_for
from tests.api.test_runs import DETAIL_FIELDS
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

POLL_FIELDS = {"series_since", "series_attempt", "series_reset", "series_counts", "series_next_since"}
LOSS = [[step, 4.0 - step / 100] for step in range(0, 60, 10)]  # steps 0..50
ACCURACY = [[step, step / 100] for step in range(0, 60, 25)]  # steps 0, 25, 50: logged less often


def running_run(**fields):
    defaults = {
        "status": RunStatus.RUNNING,
        "attempts": 1,
        "started_at": timezone.now(),
        "worker": "host:1",
        "series": {"loss": LOSS, "accuracy": ACCURACY},
    }
    return ExperimentRunFactory(**{**defaults, **fields})


def poll(run, **query):
    response = client_for(None).get(f"/api/runs/{run.pk}/", query)
    assert response.status_code == 200, response.content
    return response.json()


def test_only_points_after_the_step_come_back_with_the_next_cursor_and_every_count():
    run = running_run()
    body = poll(run, series_since=20)
    assert body["series"] == {"loss": LOSS[3:], "accuracy": ACCURACY[1:]}
    assert body["series_since"] == 20 and body["series_next_since"] == 50
    assert (body["series_attempt"], body["series_reset"]) == (1, False)
    assert body["series_counts"] == {"loss": 6, "accuracy": 3}
    assert set(body) == DETAIL_FIELDS | POLL_FIELDS


def test_a_poll_at_the_last_step_carries_no_points_and_series_grow_from_there():
    run = running_run()
    assert poll(run, series_since=50)["series"] == {}
    run.series = {"loss": [*LOSS, [60, 3.4]], "accuracy": ACCURACY}
    run.save(update_fields=["series"])
    body = poll(run, series_since=50, series_attempt=1)
    assert body["series"] == {"loss": [[60, 3.4]]}
    assert (body["series_next_since"], body["series_counts"]["loss"]) == (60, 7)


def test_without_the_parameter_the_answer_is_as_before():
    run = running_run()
    body = poll(run)
    assert set(body) == DETAIL_FIELDS
    assert body["series"] == {"loss": LOSS, "accuracy": ACCURACY}


def test_since_zero_leaves_out_only_the_first_step():
    assert poll(running_run(), series_since=0)["series"] == {"loss": LOSS[1:], "accuracy": ACCURACY[1:]}


def test_a_finished_parts_series_stay_out_and_the_cursor_follows_the_part_being_written():
    spec = ExperimentSpecFactory(kind="attention_depth_comparison", params={"depths": [1, 2]})
    part_one = {"key": "L1", "label": "1 layer", "metrics": {}, "findings": [], "artifacts": []}
    series = {"L1/loss": [[step, 4.0] for step in range(0, 1000, 100)], "L2/loss": [[0, 4.0], [100, 3.0]]}
    run = running_run(spec=spec, kind=spec.kind, parts=[part_one], series=series)
    body = poll(run, series_since=0)
    # L1 restarted nothing: its steps (up to 900) are above the cursor, yet it is finished and stays out.
    assert body["series"] == {"L2/loss": [[100, 3.0]]}
    assert body["series_next_since"] == 100  # L2's last step, not L1's 900
    assert body["series_counts"] == {"L1/loss": 10, "L2/loss": 2}


def test_a_client_holding_another_attempts_points_gets_the_whole_series_and_a_reset():
    run = running_run(attempts=2, series={"loss": LOSS[:2]})
    body = poll(run, series_since=50, series_attempt=1)
    assert (body["series_reset"], body["series_attempt"]) == (True, 2)
    assert body["series"] == {"loss": LOSS[:2]}  # whole, though every step is below the cursor
    assert body["series_next_since"] == 10


def test_a_retried_run_never_mixes_two_attempts_points(author, authored_idea):
    """Through the services: an attempt is lost (the run is queued again, its series cleared), the next one runs."""
    run = ExperimentRunFactory(spec=smoke_spec(authored_idea, author, steps=3))
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    held = poll(run, series_since=1)
    assert (held["series_attempt"], held["series"]) == (1, {"count": [[2, 2.0], [3, 3.0]]})
    # Pretend it is still running and its worker died: the run is queued again for a second attempt.
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    assert run_worker_lost(run_id=run.pk, reason="worker died", worker=run.worker) == RunStatus.QUEUED
    queued = poll(run, series_since=held["series_next_since"], series_attempt=held["series_attempt"])
    assert (queued["series_reset"], queued["series_attempt"], queued["series"]) == (True, 0, {})
    assert queued["series_counts"] == {}
    run_execute(run_id=run.pk)
    done = poll(run, series_since=queued["series_next_since"], series_attempt=queued["series_attempt"])
    assert (done["attempts"], done["series_attempt"], done["series_reset"]) == (2, 2, True)
    assert done["series"] == {"count": [[1, 1.0], [2, 2.0], [3, 3.0]]}


def test_a_client_that_missed_points_sees_it_in_the_counts():
    """A series logged over earlier steps after the cursor moved past them (grokking's progress measures)."""
    run = running_run(series={"loss": LOSS, "restricted_loss": [[0, 5.0], [10, 4.0]]})
    body = poll(run, series_since=50)
    assert body["series"] == {}
    assert body["series_counts"]["restricted_loss"] == 2  # the client holds none: it fetches the run whole


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("series_since=-1", "series_since"),
        ("series_since=1.5", "series_since"),
        ("series_since=3.0", "series_since"),
        ("series_since=true", "series_since"),
        ("series_since=", "series_since"),
        ("series_since=ten", "series_since"),
        ("series_since=%203", "series_since"),
        ("series_since=3%0A", "series_since"),
        ("series_since=%EF%BC%93", "series_since"),  # a full-width digit three
        ("series_since=1%00", "series_since"),
        ("series_since=9007199254740992", "series_since"),  # 2**53: past what a JavaScript client reads exactly
        ("series_since=" + "9" * 1001, "series_since"),
        ("series_since=1&series_since=2", "series_since"),
        ("series_since=1&series_attempt=x", "series_attempt"),
        ("series_attempt=1", "series_attempt"),
        ("series_sinse=1", "series_sinse"),
    ],
)
def test_bad_cursors_are_400_naming_the_parameter(anon_client, query, field):
    run = running_run()
    assert_error(anon_client.get(f"/api/runs/{run.pk}/?{query}"), 400, field=field)


def test_the_largest_cursor_a_client_can_hold_is_taken():
    assert poll(running_run(), series_since=2**53 - 1)["series"] == {}


def test_the_live_status_url_the_pages_poll_takes_the_cursor_too(client):
    run = running_run()
    body = client.get(f"/runs/{run.pk}/status.json", {"series_since": 40}).json()
    assert body["series"] == {"loss": [[50, 3.5]], "accuracy": [[50, 0.5]]}
    assert client.get(f"/runs/{run.pk}/status.json", {"series_since": "x"}).status_code == 400


def test_the_schema_documents_the_cursor(anon_client):
    schema = anon_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/runs/{id}/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["series_since"]["in"] == "query" and parameters["series_since"]["schema"]["minimum"] == 0
    assert "series_attempt" in parameters
    component = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    properties = schema["components"]["schemas"][component]
    assert POLL_FIELDS <= set(properties["properties"])
    assert not POLL_FIELDS & set(properties["required"])  # present only in a poll's answer
