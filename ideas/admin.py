"""Admin for the catalogue: search, filters, and bulk status changes that keep the history."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from ideas.models import Collection, Idea, IdeaLink, IdeaStatus, StatusChange, Tag, Vote
from ideas.services import idea_excerpt, idea_set_status


def _bulk_status_action(status: str):
    def action(modeladmin: IdeaAdmin, request, queryset) -> None:
        changed, skipped = 0, []
        for idea in queryset:
            try:
                change = idea_set_status(
                    idea=idea, status=status, user=request.user, reason=f"Bulk change in admin to {status}."
                )
            except ValidationError:
                skipped.append(idea.title)
                continue
            changed += change is not None
        modeladmin.message_user(request, f"{changed} idea(s) set to {IdeaStatus(status).label}.")
        if skipped:
            modeladmin.message_user(
                request,
                f"Skipped {len(skipped)} idea(s) whose kind has no status {status!r}: {'; '.join(skipped[:5])}",
                level=messages.WARNING,
            )

    action.__name__ = f"set_status_{status}"
    action.short_description = f"Set status: {IdeaStatus(status).label}"  # type: ignore[attr-defined]
    return action


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    readonly_fields = ("from_status", "to_status", "reason", "changed_by", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class LinkOutInline(admin.TabularInline):
    model = IdeaLink
    fk_name = "source"
    extra = 0
    autocomplete_fields = ("target",)


@admin.register(Idea)
class IdeaAdmin(admin.ModelAdmin):
    list_display = ("legacy_number", "title", "kind", "status", "score", "imported_votes", "author", "created_at")
    list_display_links = ("title",)
    list_filter = ("kind", "status", "tags", "collections")
    search_fields = ("title", "body", "slug")
    # Status and score only change through services, so history and votes stay consistent.
    readonly_fields = ("status", "score", "imported_votes", "created_at", "updated_at")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("tags", "collections")
    raw_id_fields = ("author",)
    inlines = [LinkOutInline, StatusChangeInline]
    actions = [_bulk_status_action(status) for status in IdeaStatus.values]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author").defer("search_vector")

    def save_model(self, request, obj, form, change) -> None:
        # The admin writes the row itself, so it stores the list's excerpt as the services do.
        obj.excerpt = idea_excerpt(obj.body)
        super().save_model(request, obj, form, change)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("idea", "user", "created_at")
    search_fields = ("idea__title", "user__username")
    raw_id_fields = ("idea", "user")

    # A vote added or removed here would bypass the score; votes change through the pages or the API.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ("idea", "from_status", "to_status", "changed_by", "created_at")
    list_filter = ("to_status",)
    search_fields = ("idea__title", "reason")
    readonly_fields = ("idea", "from_status", "to_status", "reason", "changed_by", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
