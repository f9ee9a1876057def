"""Creating and editing ideas, their status, tags and links."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import slugify

from ideas.models import (
    STATUSES_BY_KIND,
    Collection,
    Idea,
    IdeaKind,
    IdeaLink,
    IdeaStatus,
    LinkType,
    StatusChange,
    Tag,
)
from ideas.rendering import plain_excerpt
from ideas.text import clean_title, has_visible_text, no_visible_text_message

TITLE_MAX = Idea._meta.get_field("title").max_length
SLUG_MAX = Idea._meta.get_field("slug").max_length
TAG_MAX = Tag._meta.get_field("name").max_length
# Page actions live beside the slug (/ideas/<pk>/edit/), so no idea may take these as its slug.
RESERVED_SLUGS = frozenset({"edit", "vote", "status", "experiments"})


def idea_excerpt(body: str) -> str:
    """The list's plain-text preview of a body, stored beside it on every write (`Idea.excerpt`)."""
    return plain_excerpt(body or "")


def user_can_edit_idea(user, idea: Idea) -> bool:
    """Authors edit their own ideas; staff edit any."""
    if not user or not user.is_authenticated:
        return False
    return user.is_staff or (idea.author_id is not None and idea.author_id == user.pk)


def unique_slug(title: str, *, exclude_pk: int | None = None) -> str:
    base = slugify(title)[: SLUG_MAX - 8].strip("-") or "idea"
    taken = set(Idea.objects.filter(slug__startswith=base).exclude(pk=exclude_pk).values_list("slug", flat=True))
    taken |= RESERVED_SLUGS
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _clean_title(title: str) -> str:
    return clean_title(title, max_length=TITLE_MAX)


def _check_kind(kind: str) -> None:
    if kind not in IdeaKind.values:
        raise ValidationError({"kind": f"Unknown kind {kind!r}; choose one of {', '.join(IdeaKind.values)}."})


def _check_status_fits(kind: str, status: str) -> None:
    allowed = STATUSES_BY_KIND[kind]
    if status not in allowed:
        label = IdeaKind(kind).label.lower()
        raise ValidationError(
            {"status": f"{status!r} is not a status of a {label} idea; choose one of {', '.join(allowed)}."}
        )


def tags_from_names(names: Iterable[str]) -> list[Tag]:
    """The tags with these names, created when missing (names are trimmed, case kept)."""
    tags = []
    for raw in names:
        name = " ".join(str(raw).split())
        if not name:
            continue
        if len(name) > TAG_MAX:
            raise ValidationError({"tags": f"Tag {name[:20]!r}... is longer than {TAG_MAX} characters."})
        if not has_visible_text(name):
            raise ValidationError({"tags": no_visible_text_message(f"Tag {name!r}")})
        slug = slugify(name) or None
        if slug is None:
            raise ValidationError({"tags": f"Tag {name!r} has no letters or digits."})
        tag, _ = Tag.objects.get_or_create(slug=slug, defaults={"name": name})
        tags.append(tag)
    return tags


def collections_from_names(names: Iterable[str]) -> list[Collection]:
    collections = []
    for raw in names:
        name = " ".join(str(raw).split())
        if not name:
            continue
        if not has_visible_text(name):
            raise ValidationError({"collections": no_visible_text_message(f"Collection {name!r}")})
        slug = slugify(name)
        if not slug:
            raise ValidationError({"collections": f"Collection {name!r} has no letters or digits."})
        collection, _ = Collection.objects.get_or_create(slug=slug, defaults={"name": name})
        collections.append(collection)
    return collections


@transaction.atomic
def idea_create(
    *,
    author,
    title: str,
    kind: str,
    body: str = "",
    tags: Iterable[str] = (),
    collections: Iterable[str] = (),
) -> Idea:
    """A new idea, `open`, with no votes yet."""
    title = _clean_title(title)
    _check_kind(kind)
    idea = Idea.objects.create(
        title=title,
        slug=unique_slug(title),
        kind=kind,
        body=body or "",
        excerpt=idea_excerpt(body),
        status=IdeaStatus.OPEN,
        author=author if author is not None and author.is_authenticated else None,
    )
    idea.tags.set(tags_from_names(tags))
    idea.collections.set(collections_from_names(collections))
    return idea


@transaction.atomic
def idea_update(
    *,
    idea: Idea,
    user,
    title: str | None = None,
    body: str | None = None,
    kind: str | None = None,
    tags: Iterable[str] | None = None,
    collections: Iterable[str] | None = None,
) -> Idea:
    """Edit an idea's content; only its author or staff may. Fields left None stay as they are."""
    if not user_can_edit_idea(user, idea):
        raise PermissionDenied("Only the idea's author or staff can edit it.")
    if title is not None:
        idea.title = _clean_title(title)
    if body is not None:
        idea.body = body
        idea.excerpt = idea_excerpt(body)
    if kind is not None and kind != idea.kind:
        _check_kind(kind)
        _check_status_fits(kind, idea.status)
        idea.kind = kind
    idea.save()
    if tags is not None:
        idea.tags.set(tags_from_names(tags))
    if collections is not None:
        idea.collections.set(collections_from_names(collections))
    return idea


@transaction.atomic
def idea_set_status(*, idea: Idea, status: str, user=None, reason: str = "", run=None) -> StatusChange | None:
    """Move an idea to `status`, recording who and why. Setting the current status is a no-op.

    People need staff rights; `user=None` is for the system: imports, and runs
    whose verdict moved a hypothesis (`run` names the run).
    """
    if user is not None and not (user.is_authenticated and user.is_staff):
        raise PermissionDenied("Only staff can change an idea's status.")
    if status not in IdeaStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}; choose one of {', '.join(IdeaStatus.values)}."})
    _check_status_fits(idea.kind, status)
    # Lock the row so two concurrent changes record a consistent from -> to chain.
    locked = Idea.objects.select_for_update().get(pk=idea.pk)
    if locked.status == status:
        return None
    change = StatusChange.objects.create(
        idea=locked,
        from_status=locked.status,
        to_status=status,
        reason=reason.strip(),
        changed_by=user,
        run=run,
    )
    Idea.objects.filter(pk=idea.pk).update(status=status)
    idea.status = status
    return change


def idea_link_add(*, source: Idea, target: Idea, link_type: str = LinkType.RELATES_TO) -> IdeaLink:
    """Link two ideas (idempotent)."""
    if link_type not in LinkType.values:
        raise ValidationError(
            {"link_type": f"Unknown link type {link_type!r}; choose one of {', '.join(LinkType.values)}."}
        )
    if source.pk == target.pk:
        raise ValidationError({"target": "An idea cannot link to itself."})
    link, _ = IdeaLink.objects.get_or_create(source=source, target=target, link_type=link_type)
    return link
