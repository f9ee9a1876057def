"""Browsing the catalogue: the list with search, filters, sorting and pages; an idea's page; old addresses."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from ideas.forms import StatusForm
from ideas.models import Collection, Idea, IdeaKind, IdeaStatus, Tag
from ideas.rendering import render_markdown
from ideas.selectors import (
    IdeaFilters,
    collection_list,
    idea_detail,
    idea_get_by_legacy_number,
    idea_list_rows,
    idea_reference_urls,
    idea_rows_complete,
    tag_list,
)
from ideas.services import user_can_edit_idea
from ideas.views.common import idea_or_404
from ideas.views.list_rows import listed_ideas

FILTER_PARAMS = ("search", "kind", "status", "tag", "collection", "author", "ordering")
FILTER_LABELS = {
    "search": "Search",
    "kind": "Kind",
    "status": "Status",
    "tag": "Tag",
    "collection": "Collection",
    "author": "Author",
    "ordering": "Sort",
    "has_experiments": "Has experiments",
}
# The filter form's checkbox sends 1; a link may say 0 (only ideas without experiments). The API takes true/false.
PAGE_FLAGS = {"": None, "1": True, "true": True, "0": False, "false": False}
# The sort options a reader picks from; the selector knows a few more.
SORTS = (("-score", "Top"), ("-created", "Newest"), ("title", "Title"))
SELECTED = mark_safe(" selected")


def filters_from_query(query: QueryDict) -> tuple[IdeaFilters, dict[str, list[str]]]:
    """The filters the page's query asks for, and what in it cannot be read (field -> messages)."""
    flag = query.get("has_experiments", "").strip()
    errors: dict[str, list[str]] = {}
    if flag not in PAGE_FLAGS:
        errors["has_experiments"] = [f"Unknown value {flag!r}; give 1 (ideas with experiments) or 0 (ideas without)."]
    filters = IdeaFilters(
        **{name: query.get(name, "").strip() for name in FILTER_PARAMS}, has_experiments=PAGE_FLAGS.get(flag)
    )
    return filters, errors


def active_filters(query: QueryDict, filters: IdeaFilters, tags: list[Tag], collections: list[Collection]):
    """(label, value shown, URL without this filter) for each filter in use, for the removable chips."""
    shown = {
        "kind": dict(IdeaKind.choices),
        "status": dict(IdeaStatus.choices),
        "tag": {tag.slug: tag.name for tag in tags},
        "collection": {collection.slug: collection.name for collection in collections},
        "has_experiments": {True: "yes", False: "no"},
    }
    chips = []
    for name in (*FILTER_PARAMS, "has_experiments"):
        value = getattr(filters, name)
        if value in ("", None) or name == "ordering":
            continue
        rest = query.copy()
        rest.pop(name, None)
        rest.pop("page", None)
        url = reverse("idea-list") + (f"?{rest.urlencode()}" if rest else "")
        chips.append((FILTER_LABELS[name], shown.get(name, {}).get(value, value), url))
    return chips


def filter_options(items: list[Tag] | list[Collection], chosen: str) -> SafeString:
    """The <option>s of a tag or collection filter, "name (ideas)" each: built here, as the template's loop
    over every tag resolved four variables per tag on every request."""
    return format_html_join(
        "",
        '<option value="{}"{}>{} ({})</option>',
        ((item.slug, SELECTED if item.slug == chosen else "", item.name, item.idea_count) for item in items),
    )


def idea_list_page(request: HttpRequest) -> HttpResponse:
    """/ideas/: search, filter, sort and page through the catalogue. Bad filter values give a 400 that says why."""
    filters, errors = filters_from_query(request.GET)
    tags, collections = list(tag_list()), list(collection_list())
    context = {
        "filters": filters,
        "kinds": IdeaKind.choices,
        "statuses": IdeaStatus.choices,
        "sorts": ((("", "Relevance"),) if filters.search else ()) + SORTS,
        "current_sort": filters.ordering or ("" if filters.search else "-score"),
        "tags": tags,
        "collections": collections,
        "tag_options": filter_options(tags, filters.tag),
        "collection_options": filter_options(collections, filters.collection),
        "active_filters": active_filters(request.GET, filters, tags, collections),
    }
    try:
        ideas = idea_list_rows(filters=filters, user=request.user)
    except ValidationError as error:
        errors = {**error.message_dict, **errors}
    if errors:
        context["filter_errors"] = [
            (FILTER_LABELS.get(field, field), message) for field, messages in errors.items() for message in messages
        ]
        return render(request, "ideas/idea_list.html", context, status=400)
    page = Paginator(ideas, settings.IDEAS_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = listed_ideas(idea_rows_complete(list(page.object_list)))
    here = request.get_full_path()
    context["page"] = page
    context["here"] = here
    context["login_url"] = f"{reverse('login')}?next={quote(here, safe='/')}"  # as the urlencode filter writes it
    context["list_url"] = reverse("idea-list")
    context["page_range"] = page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
    return render(request, "ideas/idea_list.html", context)


def render_idea_page(
    request: HttpRequest, idea: Idea, *, status_form: StatusForm | None = None, status: int = 200
) -> HttpResponse:
    """The idea page; the status view renders it too, to show its form's errors in place."""
    if status_form is None and request.user.is_staff:
        status_form = StatusForm(idea=idea)
    context = {
        "idea": idea,
        # Sanitized by nh3 inside render_markdown, so the template may mark it safe.
        "body_html": render_markdown(idea.body, idea_url=idea_reference_urls(idea).get),
        "can_edit": user_can_edit_idea(request.user, idea),
        "status_form": status_form,
    }
    return render(request, "ideas/idea_detail.html", context, status=status)


def idea_detail_page(request: HttpRequest, pk: int, slug: str) -> HttpResponse:
    """/ideas/<pk>/<slug>/: the idea, its votes, status history, links and experiments."""
    try:
        idea = idea_detail(pk=pk, user=request.user)
    except Idea.DoesNotExist:
        raise Http404("There is no idea with this number.") from None
    if slug != idea.slug:  # an old or mistyped slug: send readers to the canonical address
        return redirect(idea, permanent=True)
    return render_idea_page(request, idea)


def idea_permalink(request: HttpRequest, pk: int) -> HttpResponse:
    """/ideas/<pk>/ -> the canonical address with the slug."""
    return redirect(idea_or_404(pk), permanent=True)


def idea_by_number(request: HttpRequest, number: int) -> HttpResponse:
    """/ideas/n/<number>/: the imported catalogue's idea numbers keep resolving."""
    try:
        idea = idea_get_by_legacy_number(number=number)
    except Idea.DoesNotExist:
        raise Http404(f"The catalogue has no idea #{number}.") from None
    return redirect(idea, permanent=True)
