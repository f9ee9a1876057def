"""Query parameters: which ones each endpoint takes, and turning the lists' into `IdeaFilters` and `RunFilters`.

Unknown parameters are an error, not silently ignored: `?kidn=x` is a 400 naming
`kidn`, because a typo should not look like "no filter". `format` is always
allowed (DRF's content negotiation reads it; the export endpoint uses it).
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import QueryDict
from rest_framework import serializers

from experiments.models import RunStatus
from experiments.selectors import KIND_MAX, METRIC_ORDERING, RUN_ORDERINGS, USERNAME_MAX, RunFilters
from ideas.models import Idea, IdeaKind, IdeaStatus
from ideas.selectors import ORDERINGS, SEARCH_MAX, IdeaFilters

ALWAYS_ALLOWED = frozenset({"format"})
FILTER_FIELDS = ("search", "kind", "status", "tag", "collection", "author", "ordering")


class QueryBooleanField(serializers.BooleanField):
    """`true` or `false`, spelled so: the query string's JSON booleans, as the bodies take only true and false.

    DRF's BooleanField also reads 1, yes, on, True... and a typo among them would look like a filter.
    """

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if data == "true":
            return True
        if data == "false":
            return False
        self.fail("invalid")


def check_query_params(query: QueryDict, allowed: frozenset[str] | set[str]) -> None:
    """400 naming each unknown or repeated query parameter."""
    errors: dict[str, str] = {}
    for name in query:
        if name not in allowed and name not in ALWAYS_ALLOWED:
            known = ", ".join(sorted(allowed)) or "none"
            errors[name] = f"Unknown query parameter; this endpoint takes: {known}."
        elif len(query.getlist(name)) > 1:
            errors[name] = "Give this parameter once."
    if errors:
        raise serializers.ValidationError(errors)


class IdeaFilterQuerySerializer(serializers.Serializer):
    """The filters of the idea list and of the export: the list page's search and filters."""

    search = serializers.CharField(required=False, allow_blank=True, max_length=SEARCH_MAX)
    kind = serializers.ChoiceField(choices=IdeaKind.choices, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=IdeaStatus.choices, required=False, allow_blank=True)
    tag = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="A tag slug.")
    collection = serializers.CharField(required=False, allow_blank=True, max_length=128, help_text="A collection slug.")
    author = serializers.CharField(required=False, allow_blank=True, max_length=150, help_text="A username.")
    ordering = serializers.ChoiceField(
        choices=list(ORDERINGS),
        required=False,
        allow_blank=True,
        help_text="Default: relevance when searching (on PostgreSQL), else -score.",
    )
    has_experiments = QueryBooleanField(
        required=False, help_text="true: only ideas with experiment specs; false: only those without."
    )

    def to_filters(self) -> IdeaFilters:
        return IdeaFilters(
            **{name: self.validated_data.get(name, "") for name in FILTER_FIELDS},
            has_experiments=self.validated_data.get("has_experiments"),
        )


class IdeaListQuerySerializer(IdeaFilterQuerySerializer):
    """The idea list: filters plus the page."""

    page = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    page_size = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=settings.API_MAX_PAGE_SIZE,
        help_text=f"Default {settings.API_PAGE_SIZE}, at most {settings.API_MAX_PAGE_SIZE}.",
    )


@functools.cache
def parameter_names(serializer_class: type[serializers.Serializer]) -> frozenset[str]:
    """The query parameters a serializer takes: its fields, built once per class, not per request."""
    return frozenset(serializer_class().fields)


def parse_query(serializer_class: type[serializers.Serializer], query: QueryDict) -> serializers.Serializer:
    """Check for unknown parameters, then validate the known ones (400 naming the field)."""
    check_query_params(query, parameter_names(serializer_class))
    serializer = serializer_class(data={name: query.get(name) for name in query if name not in ALWAYS_ALLOWED})
    serializer.is_valid(raise_exception=True)
    return serializer


# --- experiments and runs ---


class PageQuerySerializer(serializers.Serializer):
    """`page` and `page_size`, as on the idea list."""

    page = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    page_size = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=settings.API_MAX_PAGE_SIZE,
        help_text=f"Default {settings.API_PAGE_SIZE}, at most {settings.API_MAX_PAGE_SIZE}.",
    )


def _existing_id(model, label: str, value: int) -> int:
    """A filter naming a row that does not exist is a 400, like a tag that does not exist."""
    if not model.objects.filter(pk=value).exists():
        raise serializers.ValidationError(f"No {label} with id {value}.")
    return value


class SpecListQuerySerializer(PageQuerySerializer):
    idea = serializers.IntegerField(required=False, min_value=1, help_text="An idea's id: only its specs.")

    def validate_idea(self, value: int) -> int:
        return _existing_id(Idea, "idea", value)


class RunListQuerySerializer(PageQuerySerializer):
    """The runs page's filters and orderings (`RunFilters`), plus the page; the selector checks the values."""

    kind = serializers.CharField(required=False, allow_blank=True, max_length=KIND_MAX, help_text="A kind's key.")
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False, allow_blank=True)
    idea = serializers.IntegerField(required=False, min_value=1, help_text="An idea's id: the runs of all its specs.")
    spec = serializers.IntegerField(required=False, min_value=1, help_text="A spec's id: only its runs.")
    user = serializers.CharField(
        required=False, allow_blank=True, max_length=USERNAME_MAX, help_text="A username: the runs they started."
    )
    ordering = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=120,
        help_text=f"One of {', '.join(RUN_ORDERINGS)}, or {METRIC_ORDERING}<metric name> (the metric's value; "
        "runs without it last), each with a leading - for descending. Default: -created (newest first).",
    )

    def to_filters(self) -> RunFilters:
        data = self.validated_data
        text = {name: data.get(name, "") for name in ("kind", "status", "user", "ordering")}
        return RunFilters(**text, idea=data.get("idea"), spec=data.get("spec"))
