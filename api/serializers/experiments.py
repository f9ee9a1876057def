"""Experiment kinds, specs and runs as the API shows them, and what a caller sends to make them.

Inputs are checked for shape here; `experiments.services` checks them again
against the kind (params, criterion metric) and has the last word.
"""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.fields import (
    StrictBooleanField,
    StrictFloatField,
    StrictIntegerField,
    StrictPrimaryKeyRelatedField,
    TextField,
)
from api.serializers.ideas import IdeaRefSerializer
from experiments.engine.registry import Kind
from experiments.models import Artifact, Comparator, ExperimentRun, ExperimentSpec, Verdict
from experiments.selectors import RUNS_SHOWN_PER_SPEC, kind_catalog, live_queues, run_waiting_for
from experiments.series import series_poll
from experiments.services import run_can_cancel
from experiments.services.specs import SEED_MAX
from ideas.models import Idea

TITLE_MAX = ExperimentSpec._meta.get_field("title").max_length
DESCRIPTION_MAX = 20_000
SERIES_STEP_MAX = 2**53 - 1  # the largest whole number a JavaScript client reads exactly

# A JSON object with any keys: params, summaries, manifests.
JSON_OBJECT = {"type": "object", "additionalProperties": {}}


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


def run_api_url(run_id: int, request) -> str:
    return _absolute(request, reverse("api:run-detail", kwargs={"pk": run_id}))


def run_page_url(run: ExperimentRun, request) -> str | None:
    try:
        path = run.get_absolute_url()
    except NoReverseMatch:  # the pages are not mounted (an API-only deployment)
        return None
    return _absolute(request, path)


@extend_schema_field(JSON_OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON object stored as is (params, summary, manifest)."""


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number", "nullable": True}})
class MetricsField(serializers.JSONField):
    """{metric: value}; a value that was not finite is null."""


SERIES_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "type": "array",
        "items": {
            "type": "array",
            "items": {"type": "number", "nullable": True},
            "minItems": 2,
            "maxItems": 2,
        },
    },
}


@extend_schema_field(SERIES_SCHEMA)
class SeriesField(serializers.JSONField):
    """{metric: [[step, value], ...]}; a value that was not finite is null."""


# --- kinds -------------------------------------------------------------------------------------


class KindSerializer(serializers.Serializer):
    """A registered experiment kind: what it computes, the params it takes, the metrics it produces."""

    key = serializers.CharField(help_text="What a spec's `kind` names.")
    title = serializers.CharField()
    doc = serializers.CharField(help_text="The kind's docstring: what it computes and which paper it follows.")
    version = serializers.CharField(help_text="Part of every spec hash: cached runs are not reused across versions.")
    params_schema = serializers.SerializerMethodField(help_text="JSON Schema of the kind's params.")
    metrics = serializers.DictField(
        child=serializers.CharField(), help_text="Each metric the kind produces, with its meaning."
    )
    part_metrics = serializers.DictField(
        child=serializers.CharField(),
        help_text="A composite kind's metrics of each part, unprefixed (a run names them <part>_<metric>).",
    )
    series = serializers.DictField(
        child=serializers.CharField(), help_text="The step series it logs, in words (chart titles and axes)."
    )
    device = serializers.ChoiceField(choices=["cpu", "gpu"], help_text="Where its runs go: the cpu or gpu queue.")
    soft_time_limit = serializers.IntegerField(help_text="Seconds before a run is asked to stop.")
    time_limit = serializers.IntegerField(help_text="Seconds before a run's worker process is killed.")

    @extend_schema_field(JSON_OBJECT)
    def get_params_schema(self, kind: Kind) -> dict[str, Any]:
        return kind.params_schema()


# --- runs --------------------------------------------------------------------------------------


class ArtifactSerializer(serializers.ModelSerializer):
    """A file a run wrote; `url` downloads it."""

    url = serializers.SerializerMethodField(help_text="Download it from the API.")

    class Meta:
        model = Artifact
        fields = ["name", "artifact_type", "content_type", "size", "sha256", "url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, artifact: Artifact) -> str:
        path = reverse("api:run-artifact", kwargs={"pk": artifact.run_id, "name": artifact.name})
        return _absolute(self.context.get("request"), path)


class SpecRefSerializer(serializers.ModelSerializer):
    """The spec a run executes."""

    class Meta:
        model = ExperimentSpec
        fields = ["id", "title"]


def _verdict_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=Verdict.choices,
        allow_blank=True,
        read_only=True,
        help_text="What the run says about the hypothesis under the spec's criterion; blank without one.",
    )


class RunRefSerializer(serializers.ModelSerializer):
    """A run in its spec's short list."""

    verdict = _verdict_field()
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = ExperimentRun
        fields = ["id", "status", "progress", "verdict", "forced", "created_by", "created_at", "finished_at"]
        read_only_fields = fields


class PartSerializer(serializers.Serializer):
    """A finished part of a composite run: its metrics (unprefixed), findings and the artifacts it saved."""

    key = serializers.CharField(help_text="Prefixes its metrics in the run's `metrics`: L2 -> L2_<metric>.")
    label = serializers.CharField()
    metrics = MetricsField()
    findings = serializers.ListField(child=serializers.CharField())
    artifacts = serializers.ListField(child=serializers.CharField(), help_text="Names of the artifacts it saved.")


class LogEntrySerializer(serializers.Serializer):
    """A line of a run's log."""

    t = serializers.FloatField(help_text="Seconds since the attempt started.")
    level = serializers.ChoiceField(choices=["info", "warning"])
    message = serializers.CharField()


class RunSummarySerializer(serializers.ModelSerializer):
    """A run in the list. Expects runs from `experiments.selectors.run_list` (spec, idea and artifacts loaded)."""

    url = serializers.SerializerMethodField(help_text="This run's page for people (null if the pages are not served).")
    spec = SpecRefSerializer(read_only=True)
    idea = IdeaRefSerializer(source="spec.idea", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    metrics = MetricsField(read_only=True, help_text="Named scalar metrics, once the run succeeded.")
    params = JSONObjectField(read_only=True, help_text="The normalized params this run used.")
    artifacts = ArtifactSerializer(
        source="artifacts_in_order",
        many=True,
        read_only=True,
        help_text="Other artifacts by name, then checkpoints by training step.",
    )
    verdict = _verdict_field()
    findings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What the run found, one sentence each, built from its numbers; a partial run's are its parts'.",
    )
    partial = serializers.BooleanField(
        read_only=True, help_text="Cancelled or failed after some parts finished: their results are kept."
    )
    headline = serializers.CharField(read_only=True, help_text="The artifact name of its headline figure, or ''.")
    elapsed_seconds = serializers.FloatField(
        read_only=True, allow_null=True, help_text="How long it has run (its duration once finished)."
    )
    seconds_left = serializers.FloatField(
        read_only=True, allow_null=True, help_text="While running: the estimated time left at its recent pace."
    )
    duration_seconds = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Once finished: from start to finish."
    )
    can_cancel = serializers.SerializerMethodField(help_text="Whether the caller may cancel it.")
    waiting_for = serializers.SerializerMethodField(
        help_text="While queued with no live worker consuming its queue: what it waits for and how to start "
        "one (e.g. a GPU worker for the gpu queue); null otherwise, including while it merely waits its turn."
    )

    class Meta:
        model = ExperimentRun
        fields = [
            "id",
            "url",
            "spec",
            "idea",
            "kind",
            "params",
            "seed",
            "spec_hash",
            "status",
            "progress",
            "progress_message",
            "attempts",
            "max_attempts",
            "queue",
            "waiting_for",
            "device",
            "worker",
            "cancel_requested",
            "forced",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "elapsed_seconds",
            "seconds_left",
            "duration_seconds",
            "findings",
            "partial",
            "headline",
            "metrics",
            "verdict",
            "error",
            "artifacts",
            "can_cancel",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_url(self, run: ExperimentRun) -> str | None:
        return run_page_url(run, self.context.get("request"))

    def get_can_cancel(self, run: ExperimentRun) -> bool:
        request = self.context.get("request")
        return run_can_cancel(getattr(request, "user", None), run)

    @extend_schema_field({"type": "string", "nullable": True})
    def get_waiting_for(self, run: ExperimentRun) -> str | None:
        if run.status != "queued":
            return None
        if "live_queues" not in self.context:  # one query for a whole list of runs
            self.context["live_queues"] = live_queues()
        return run_waiting_for(run, self.context["live_queues"])


class RunDetailSerializer(RunSummarySerializer):
    """One run with everything it recorded: step series, summary, reproducibility manifest."""

    series = SeriesField(
        read_only=True,
        help_text="Step metrics: {metric: [[step, value], ...]}; a part's are named <part>/<metric>.",
    )
    parts = PartSerializer(
        many=True, read_only=True, help_text="A composite kind's finished parts (a depth, a model), in order."
    )
    log = LogEntrySerializer(many=True, read_only=True, help_text="What the kind reported: stages and warnings.")
    summary = JSONObjectField(read_only=True, help_text="What the pages show besides metrics (tables, names).")
    manifest = JSONObjectField(
        read_only=True, help_text="Spec hash, seed, code and package versions, device: what reproduces it."
    )

    class Meta(RunSummarySerializer.Meta):
        fields = [*RunSummarySerializer.Meta.fields, "series", "parts", "log", "summary", "manifest"]
        read_only_fields = fields


class QueryStepField(serializers.IntegerField):
    """A whole number >= 0 written in decimal digits and nothing else.

    DRF's IntegerField also reads "3.0", " 3" and "3\\n"; a cursor written wrongly should be a 400, not a
    guess.
    """

    default_error_messages = {"not_digits": "Must be a whole number written in digits (0, 1, 2, ...)."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.isascii() or not data.isdigit():
            self.fail("not_digits")
        return super().to_internal_value(data)


class RunDetailQuerySerializer(serializers.Serializer):
    """What `GET /api/runs/<id>/` takes: an incremental poll of the step series (see `experiments.series`)."""

    series_since = QueryStepField(
        required=False,
        min_value=0,
        max_value=SERIES_STEP_MAX,
        help_text="Only the series points with a step above this one (a poll's `series_next_since`); the answer "
        "then also carries `series_since`, `series_attempt`, `series_reset`, `series_counts` and "
        "`series_next_since`. A finished part's series are left out. Without it: the whole series.",
    )
    series_attempt = QueryStepField(
        required=False,
        min_value=0,
        max_value=SERIES_STEP_MAX,
        help_text="With `series_since`: the attempt whose points you hold (a poll's `series_attempt`). When the "
        "run's is another one (it was retried), the answer has the whole series and `series_reset` true.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "series_attempt" in attrs and "series_since" not in attrs:
            raise serializers.ValidationError({"series_attempt": "Give it with series_since."})
        return attrs


class RunSeriesPollSerializer(RunDetailSerializer):
    """A run as `GET /api/runs/<id>/` answers it; with `?series_since=`, its series since that step and how to
    stay in step with them (see `experiments.series`).

    The poll's fields are declared optional (neither read-only nor required), so the schema says they are
    present only in a poll's answer; this serializer only ever renders.
    """

    series = SeriesField(
        read_only=True,
        help_text="Step metrics: {metric: [[step, value], ...]}; a part's are named <part>/<metric>. With "
        "`series_since`: only points with a step above it, per series with any (a finished part's series left "
        "out); whole again when `series_reset`.",
    )
    series_since = serializers.IntegerField(required=False, help_text="Polls only: the step asked for.")
    series_attempt = serializers.IntegerField(
        required=False, help_text="Polls only: the attempt these points belong to; 0 while no attempt holds any."
    )
    series_reset = serializers.BooleanField(
        required=False,
        help_text="Polls only: the run is on another attempt than the query's `series_attempt`: drop what you "
        "hold; `series` is whole.",
    )
    series_counts = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Polls only: every series' number of points, new or not. If yours differ after adding "
        "`series`, you missed points (a series logged over earlier steps, a long series thinned): fetch the run "
        "once without `series_since`.",
    )
    series_next_since = serializers.IntegerField(
        required=False,
        help_text="Polls only: the `series_since` of your next poll, the last step of the series still written.",
    )

    class Meta(RunDetailSerializer.Meta):
        fields = [
            *RunDetailSerializer.Meta.fields,
            "series_since",
            "series_attempt",
            "series_reset",
            "series_counts",
            "series_next_since",
        ]

    def to_representation(self, run: ExperimentRun) -> dict[str, Any]:
        data = RunDetailSerializer(run, context=self.context).data
        query = self.context.get("series_query") or {}
        if "series_since" not in query:
            return data
        return {**data, **series_poll(run, since=query["series_since"], attempt=query.get("series_attempt"))}


class RunTriggerResultSerializer(RunDetailSerializer):
    """The run that answers a trigger, and how it was found: renders `run_trigger`'s TriggerResult."""

    cached = serializers.BooleanField(
        read_only=True, help_text="An identical run already succeeded: this is its result (HTTP 200)."
    )
    created = serializers.BooleanField(
        read_only=True, help_text="A new run was queued; false when an identical one was already queued or running."
    )

    class Meta(RunDetailSerializer.Meta):
        fields = [*RunDetailSerializer.Meta.fields, "cached", "created"]
        read_only_fields = fields

    def to_representation(self, result) -> dict[str, Any]:
        data = RunDetailSerializer(result.run, context=self.context).data
        return {**data, "cached": result.cached, "created": result.created}


class RunTriggerInputSerializer(serializers.Serializer):
    force = StrictBooleanField(
        required=False,
        default=False,
        help_text="Queue a replication even though an identical run succeeded (or is queued or running).",
    )


class RunPageSerializer(serializers.Serializer):
    """One page of the run list."""

    count = serializers.IntegerField(help_text="Runs matching the filters, on all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = RunSummarySerializer(many=True)


# --- specs -------------------------------------------------------------------------------------


class CriterionSerializer(serializers.Serializer):
    """A pre-registered criterion: when the run's `metric` <comparator> `threshold`, the verdict is `if_met`."""

    metric = TextField(max_length=100, help_text="One of the kind's metrics.")
    comparator = serializers.ChoiceField(choices=Comparator.choices)
    threshold = StrictFloatField()
    if_met = serializers.ChoiceField(
        choices=[Verdict.SUPPORTS, Verdict.REFUTES], help_text="What meeting it means for the hypothesis."
    )
    otherwise = serializers.ChoiceField(
        choices=Verdict.choices, required=False, help_text="The verdict when it is not met; default: the opposite."
    )


class SpecSerializer(serializers.ModelSerializer):
    """A spec with its params, criterion and its newest runs. Expects specs from `experiments.selectors.spec_list`."""

    idea = IdeaRefSerializer(read_only=True)
    author = serializers.CharField(source="author.username", read_only=True, allow_null=True)
    params = JSONObjectField(read_only=True, help_text="The kind's params, every default filled in.")
    criterion = CriterionSerializer(read_only=True, allow_null=True)
    run_count = serializers.SerializerMethodField(help_text="All its runs.")
    runs = serializers.SerializerMethodField(help_text=f"Its newest runs, at most {RUNS_SHOWN_PER_SPEC}.")

    class Meta:
        model = ExperimentSpec
        fields = [
            "id",
            "idea",
            "title",
            "description",
            "kind",
            "params",
            "seed",
            "criterion",
            "author",
            "created_at",
            "updated_at",
            "run_count",
            "runs",
        ]
        read_only_fields = fields

    def get_run_count(self, spec: ExperimentSpec) -> int:
        return spec.run_count

    @extend_schema_field(RunRefSerializer(many=True))
    def get_runs(self, spec: ExperimentSpec) -> list[dict[str, Any]]:
        return RunRefSerializer(spec.recent_runs, many=True, context=self.context).data


class SpecCreateSerializer(serializers.Serializer):
    idea = StrictPrimaryKeyRelatedField(queryset=Idea.objects.all(), help_text="The id of the idea it tests.")
    title = TextField(max_length=TITLE_MAX)
    description = TextField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=DESCRIPTION_MAX, default=""
    )
    kind = serializers.ChoiceField(
        choices=[],  # the registered kinds, filled in per instance
        help_text="A key from /api/experiment-kinds/.",
        error_messages={"invalid_choice": '"{input}" is not a registered experiment kind; see /api/experiment-kinds/.'},
    )
    params = serializers.DictField(
        required=False, default=dict, help_text="The kind's params (see its params_schema); defaults fill the rest."
    )
    seed = StrictIntegerField(required=False, default=0, min_value=0, max_value=SEED_MAX)
    criterion = CriterionSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="Pre-register evidence (the idea's author or staff only): the verdict of each run follows it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(kind.key, kind.title) for kind in kind_catalog()]


class SpecPageSerializer(serializers.Serializer):
    """One page of the spec list."""

    count = serializers.IntegerField(help_text="Specs matching the filters, on all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = SpecSerializer(many=True)
