"""An idea's evidence as the API's idea detail shows it: the same `experiments.selectors.idea_evidence` the idea
page's header line reads."""

from __future__ import annotations

from django.urls import NoReverseMatch
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.models import ExperimentRun, Verdict


class EvidenceRunSerializer(serializers.ModelSerializer):
    """The newest run whose verdict counts."""

    url = serializers.SerializerMethodField(help_text="This run's page for people (null if the pages are not served).")
    verdict = serializers.ChoiceField(choices=Verdict.choices, read_only=True)

    class Meta:
        model = ExperimentRun
        fields = ["id", "verdict", "finished_at", "url"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_url(self, run: ExperimentRun) -> str | None:
        try:
            path = run.get_absolute_url()
        except NoReverseMatch:  # the pages are not mounted (an API-only deployment)
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class VerdictCountsSerializer(serializers.Serializer):
    """How many experiments' latest verdict is each verdict."""

    supports = serializers.IntegerField(min_value=0)
    refutes = serializers.IntegerField(min_value=0)
    inconclusive = serializers.IntegerField(min_value=0)


class EvidenceSerializer(serializers.Serializer):
    """What the idea's experiments say. Each experiment (spec) counts once, with the verdict of its latest
    succeeded run that has one: replicating a spec replaces its verdict rather than adding another."""

    experiments = serializers.IntegerField(min_value=0, help_text="The idea's experiment specs.")
    runs = serializers.IntegerField(min_value=0, help_text="Their runs, in any state.")
    counts = VerdictCountsSerializer(help_text="Experiments per verdict (each by its latest verdict).")
    latest_run = EvidenceRunSerializer(
        source="latest", allow_null=True, help_text="The newest of the counted runs; null when none has a verdict."
    )
