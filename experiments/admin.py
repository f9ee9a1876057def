"""Admin for specs, runs and artifacts. Runs change state through services, so their fields are read-only."""

from django.contrib import admin, messages

from experiments.models import Artifact, ExperimentRun, ExperimentSpec
from experiments.services import run_cancel, run_trigger


@admin.register(ExperimentSpec)
class ExperimentSpecAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "kind", "idea", "seed", "author", "created_at")
    list_filter = ("kind",)
    search_fields = ("title", "idea__title")
    raw_id_fields = ("idea", "author")
    readonly_fields = ("created_at", "updated_at")
    actions = ["trigger_runs"]

    @admin.action(description="Run the selected specs (cached results are reused)")
    def trigger_runs(self, request, queryset) -> None:
        for spec in queryset:
            result = run_trigger(spec=spec, user=request.user)
            state = "cached" if result.cached else ("queued" if result.created else result.run.status)
            self.message_user(request, f"{spec.title}: run {result.run.pk} {state}.")


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    can_delete = False
    readonly_fields = ("name", "artifact_type", "content_type", "size", "sha256", "path")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExperimentRun)
class ExperimentRunAdmin(admin.ModelAdmin):
    list_display = ("id", "spec", "kind", "status", "progress", "attempts", "verdict", "worker", "created_at")
    list_filter = ("status", "kind", "verdict", "queue")
    search_fields = ("spec__title", "spec_hash", "worker")
    inlines = [ArtifactInline]
    actions = ["cancel_runs"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset) -> None:
        for run in queryset:
            run_cancel(run=run, user=request.user)
        self.message_user(request, f"Asked {queryset.count()} run(s) to cancel.", level=messages.INFO)
