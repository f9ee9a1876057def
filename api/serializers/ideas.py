"""Ideas as the API shows them: a summary in lists and exports, everything on the detail."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.evidence import EvidenceSerializer
from api.serializers.idea_urls import IdeaAddresses
from api.serializers.taxonomy import CollectionRefSerializer, TagRefSerializer
from experiments.models import Verdict
from experiments.selectors import idea_evidence
from ideas.models import Idea, IdeaLink, IdeaStatus, StatusChange
from ideas.rendering import render_markdown
from ideas.selectors import idea_reference_urls
from ideas.services import user_can_edit_idea


class IdeaUrlsMixin(serializers.Serializer):
    url = serializers.SerializerMethodField(help_text="This idea in the API.")
    page_url = serializers.SerializerMethodField(help_text="This idea's page for people.")

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, idea: Idea) -> str:
        return IdeaAddresses.for_context(self.context).api_url(idea.pk)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_page_url(self, idea: Idea) -> str | None:
        return IdeaAddresses.for_context(self.context).page_url(idea.pk, idea.slug)


class NameSlugListField(serializers.Field):
    """An idea's tags or collections as [{"name", "slug"}], in name order.

    Reads the plain list `idea_list` prefetches (`listed_<relation>`) when there is one, else the
    relation (prefetched by `idea_detail`); builds the dicts directly, as a list of 50 ideas would
    otherwise run a nested serializer per tag.
    """

    relation = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, idea: Idea) -> list[dict[str, str]]:
        items = getattr(idea, f"listed_{self.relation}", None)
        if items is None:
            items = getattr(idea, self.relation).all()
        return [{"name": item.name, "slug": item.slug} for item in items]


@extend_schema_field(TagRefSerializer(many=True))
class TagRefsField(NameSlugListField):
    relation = "tags"


@extend_schema_field(CollectionRefSerializer(many=True))
class CollectionRefsField(NameSlugListField):
    relation = "collections"


class IdeaRefSerializer(IdeaUrlsMixin, serializers.ModelSerializer):
    """Another idea, as a link points at it."""

    class Meta:
        model = Idea
        fields = ["id", "legacy_number", "slug", "title", "url", "page_url"]


class IdeaSummarySerializer(IdeaUrlsMixin, serializers.ModelSerializer):
    """An idea in a list or an export. `voted`: whether the caller has voted for it.

    Expects ideas from `ideas.selectors.idea_list` or `idea_detail`, which annotate the experiment fields.
    """

    voted = serializers.BooleanField(read_only=True)
    experiment_count = serializers.IntegerField(read_only=True, help_text="Its experiment specs.")
    run_count = serializers.IntegerField(read_only=True, help_text="Their runs, in any state.")
    latest_verdict = serializers.ChoiceField(
        choices=Verdict.choices,
        allow_blank=True,
        read_only=True,
        help_text="The verdict of its newest succeeded run that has one; blank when none has.",
    )
    author = serializers.CharField(source="author.username", read_only=True, allow_null=True)
    tags = TagRefsField()
    collections = CollectionRefsField()

    class Meta:
        model = Idea
        fields = [
            "id",
            "legacy_number",
            "slug",
            "title",
            "kind",
            "status",
            "score",
            "voted",
            "author",
            "tags",
            "collections",
            "experiment_count",
            "run_count",
            "latest_verdict",
            "url",
            "page_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LinkOutSerializer(serializers.ModelSerializer):
    """This idea -> another: "this idea <link_type> idea"."""

    idea = IdeaRefSerializer(source="target", read_only=True)

    class Meta:
        model = IdeaLink
        fields = ["id", "link_type", "idea"]


class LinkInSerializer(serializers.ModelSerializer):
    """Another idea -> this one: "idea <link_type> this idea"."""

    idea = IdeaRefSerializer(source="source", read_only=True)

    class Meta:
        model = IdeaLink
        fields = ["id", "link_type", "idea"]


class StatusChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.CharField(source="changed_by.username", read_only=True, allow_null=True)

    class Meta:
        model = StatusChange
        fields = ["id", "from_status", "to_status", "reason", "changed_by", "run", "created_at"]
        read_only_fields = fields  # "run": the run whose verdict made an automatic change


class IdeaDetailSerializer(IdeaSummarySerializer):
    """One idea with its body (markdown and sanitized HTML), links both ways and status history.

    Expects an idea from `ideas.selectors.idea_detail`, whose prefetches it reads.
    """

    body_html = serializers.SerializerMethodField(help_text="The body rendered and sanitized.")
    allowed_statuses = serializers.ListField(child=serializers.ChoiceField(choices=IdeaStatus.choices), read_only=True)
    can_edit = serializers.SerializerMethodField(help_text="Whether the caller may edit or delete this idea.")
    links_out = LinkOutSerializer(many=True, read_only=True)
    links_in = LinkInSerializer(many=True, read_only=True)
    status_history = StatusChangeSerializer(source="status_changes", many=True, read_only=True)
    evidence = serializers.SerializerMethodField(
        help_text="What its experiments say: verdicts counted per experiment, and the newest (as its page's header)."
    )

    class Meta(IdeaSummarySerializer.Meta):
        fields = [
            *IdeaSummarySerializer.Meta.fields,
            "body",
            "body_html",
            "allowed_statuses",
            "can_edit",
            "links_out",
            "links_in",
            "status_history",
            "evidence",
        ]
        read_only_fields = fields

    def get_body_html(self, idea: Idea) -> str:
        return render_markdown(idea.body, idea_url=idea_reference_urls(idea).get)

    @extend_schema_field(EvidenceSerializer)
    def get_evidence(self, idea: Idea) -> dict:
        return EvidenceSerializer(idea_evidence(idea_id=idea.pk), context=self.context).data

    def get_can_edit(self, idea: Idea) -> bool:
        request = self.context.get("request")
        return user_can_edit_idea(getattr(request, "user", None), idea)


class IdeaPageSerializer(serializers.Serializer):
    """One page of the idea list."""

    count = serializers.IntegerField(help_text="Ideas matching the filters, on all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = IdeaSummarySerializer(many=True)
