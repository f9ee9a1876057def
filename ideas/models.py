"""The catalogue: ideas, votes, tags, collections, links between ideas, status history.

Models hold fields, choices and constraints; every write goes through
`ideas.services`, every list read through `ideas.selectors`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.urls import reverse

# The longest `ideas.rendering.plain_excerpt` the list stores (it cuts at 220 characters).
EXCERPT_MAX = 240


class IdeaKind(models.TextChoices):
    HYPOTHESIS = "hypothesis", "Hypothesis"
    OPEN_ENDED = "open_ended", "Open-ended"


class IdeaStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    SUPPORTED = "supported", "Supported"
    REFUTED = "refuted", "Refuted"
    INCONCLUSIVE = "inconclusive", "Inconclusive"
    RESOLVED = "resolved", "Resolved"
    ARCHIVED = "archived", "Archived"


# Which statuses each kind of idea moves through (DESIGN.md, "Domain").
STATUSES_BY_KIND: dict[str, tuple[str, ...]] = {
    IdeaKind.HYPOTHESIS: (
        IdeaStatus.OPEN,
        IdeaStatus.IN_PROGRESS,
        IdeaStatus.SUPPORTED,
        IdeaStatus.REFUTED,
        IdeaStatus.INCONCLUSIVE,
        IdeaStatus.ARCHIVED,
    ),
    IdeaKind.OPEN_ENDED: (
        IdeaStatus.OPEN,
        IdeaStatus.IN_PROGRESS,
        IdeaStatus.RESOLVED,
        IdeaStatus.ARCHIVED,
    ),
}


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Collection(models.Model):
    name = models.CharField(max_length=128, unique=True)
    slug = models.SlugField(max_length=128, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Idea(models.Model):
    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=IdeaKind.choices)
    body = models.TextField(blank=True, help_text="Markdown; rendered and sanitized on display.")
    status = models.CharField(max_length=16, choices=IdeaStatus.choices, default=IdeaStatus.OPEN)
    # score = imported_votes + number of Vote rows; services keep it exact with
    # F() updates in the same transaction as the vote row.
    imported_votes = models.PositiveIntegerField(default=0)
    score = models.IntegerField(default=0, db_index=True)
    legacy_number = models.PositiveIntegerField(
        unique=True, null=True, blank=True, help_text="The idea's number in the imported catalogue."
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ideas"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="ideas")
    collections = models.ManyToManyField(Collection, blank=True, related_name="ideas")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # What the list shows under the title: the services store `plain_excerpt(body)` with the body, so a
    # list page reads a short column instead of rendering every row's markdown.
    excerpt = models.CharField(max_length=EXCERPT_MAX, blank=True, default="", editable=False)
    # PostgreSQL only (NULL on SQLite): title (weight A), body (B) and tag names (C) as one weighted
    # document, written by database triggers (migration 0003), indexed with GIN, read by search and rank.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-score", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=IdeaKind.values), name="idea_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=IdeaStatus.values), name="idea_status_valid"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("idea-detail", kwargs={"pk": self.pk, "slug": self.slug})

    @property
    def allowed_statuses(self) -> tuple[str, ...]:
        return STATUSES_BY_KIND[self.kind]

    @property
    def is_archived(self) -> bool:
        return self.status == IdeaStatus.ARCHIVED


class Vote(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="votes")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "idea"], name="vote_one_per_user_idea")]

    def __str__(self) -> str:
        return f"{self.user} -> {self.idea_id}"


class LinkType(models.TextChoices):
    EXPANDS = "expands", "expands"
    DUPLICATES = "duplicates", "duplicates"
    RELATES_TO = "relates_to", "relates to"


class IdeaLink(models.Model):
    source = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="links_in")
    link_type = models.CharField(max_length=16, choices=LinkType.choices, default=LinkType.RELATES_TO)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "link_type"], name="idealink_unique"),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="idealink_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.link_type} {self.target_id}"


class StatusChange(models.Model):
    """One change of an idea's status: who (a person, or a run's verdict), from, to, why."""

    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=IdeaStatus.choices)
    to_status = models.CharField(max_length=16, choices=IdeaStatus.choices)
    reason = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        "experiments.ExperimentRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="status_changes",
        help_text="The run whose verdict made this change, for automatic changes.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.idea_id}: {self.from_status} -> {self.to_status}"
