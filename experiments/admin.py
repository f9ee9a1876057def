"""Admin for specs, runs, artifacts and datasets.

Runs change state through services, so their fields are read-only; datasets are uploaded on the
pages or the API and deleted through `dataset_delete` (which removes their files too).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from experiments.models import Artifact, Dataset, ExperimentRun, ExperimentSpec, WorkerQueue
from experiments.services import dataset_delete, run_cancel, run_trigger


@admin.register(ExperimentSpec)
class ExperimentSpecAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "kind", "idea", "seed", "author", "created_at")
    list_filter = ("kind",)
    search_fields = ("title", "idea__title")
    raw_id_fields = ("idea", "author")
    # What a spec runs is validated by spec_create (pages, API); the admin edits only its words.
    readonly_fields = ("kind", "params", "seed", "criterion", "created_at", "updated_at")
    actions = ["trigger_runs"]

    def has_add_permission(self, request) -> bool:
        return False  # add specs on the idea page or through the API, where the params are validated

    @admin.action(description="Run the selected specs (cached results are reused)")
    def trigger_runs(self, request, queryset) -> None:
        for spec in queryset:
            try:
                result = run_trigger(spec=spec, user=request.user)
            except (ValidationError, PermissionDenied) as exc:
                reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"{spec.title}: not run: {reason}", level=messages.ERROR)
                continue
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


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "size", "n_lines", "uploaded_by", "created_at")
    search_fields = ("name", "description", "sha256")
    actions = ["delete_datasets"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # uploads are checked and stored by dataset_upload (the /datasets/ page or the API)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the plain delete would leave the file behind: use the action

    @admin.action(description="Delete the selected datasets and their files")
    def delete_datasets(self, request, queryset) -> None:
        for dataset in queryset:
            label = str(dataset)  # before the delete clears its pk
            try:
                dataset_delete(dataset=dataset, user=request.user)
            except ValidationError as error:
                self.message_user(request, f"{label}: {' '.join(error.messages)}", level=messages.ERROR)
            else:
                self.message_user(request, f"Deleted {label}.")


@admin.register(WorkerQueue)
class WorkerQueueAdmin(admin.ModelAdmin):
    """Which worker consumes which queue, as the workers last said (read-only: the workers write it)."""

    list_display = ("worker", "queue", "seen_at")
    list_filter = ("queue",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
