"""Importing a catalogue file into the database, and exporting the database as one.

The readers in `ideas.importers` parse and check the whole file first;
`catalogue_import` then writes it in one transaction, so a bad record leaves
the database as it was. Ideas are matched by legacy number (by slug for
export records without one) and updated in place: live votes stay, slugs stay,
a changed vote count moves the score by the difference, and a changed status
goes through `idea_set_status`, so it is recorded like any other. A record's
`tags` (when its file names them) replace the idea's; its `derived_tags` are
added beside them and never remove one, so a tag added on the site survives a
re-import, and a derived tag removed on the site comes back with the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Prefetch, QuerySet
from django.utils.text import slugify

from ideas.exporters import WRITERS
from ideas.importers import Catalogue, CatalogueError, IdeaRecord, LinkRecord, Vocabulary, read_catalogue
from ideas.models import STATUSES_BY_KIND, Collection, Idea, IdeaLink, LinkType
from ideas.services.ideas import (
    SLUG_MAX,
    TITLE_MAX,
    collections_from_names,
    idea_excerpt,
    idea_link_add,
    idea_set_status,
    tags_from_names,
    unique_slug,
)

VOCABULARY = Vocabulary(statuses_by_kind=STATUSES_BY_KIND, link_types=tuple(LinkType.values))
EXPORT_FORMATS = tuple(WRITERS)


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int
    links_added: int
    references_not_found: int  # links whose target is in neither the file nor the database

    def __str__(self) -> str:
        text = f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}"
        text += f", links added {self.links_added}"
        if self.references_not_found:
            n = self.references_not_found
            text += f" ({n} reference{'' if n == 1 else 's'} to ideas not in the database)"
        return text


def catalogue_read(*, data: bytes, filename: str = "", file_format: str = "") -> Catalogue:
    """Parse a catalogue file (text, JSON or CSV export; detected when `file_format` is empty)."""
    return read_catalogue(data, vocabulary=VOCABULARY, filename=filename, file_format=file_format)


def _check_records(records: tuple[IdeaRecord, ...]) -> None:
    """What the readers cannot know: field sizes, and numbers or slugs used twice in one file."""
    numbers: set[int] = set()
    slugs: set[str] = set()
    for record in records:
        if len(record.title) > TITLE_MAX:
            raise CatalogueError(record.where, f"title is {len(record.title)} characters; at most {TITLE_MAX}")
        if record.slug and len(record.slug) > SLUG_MAX:
            raise CatalogueError(record.where, f"slug is {len(record.slug)} characters; at most {SLUG_MAX}")
        if record.legacy_number is not None:
            if record.legacy_number in numbers:
                raise CatalogueError(record.where, f"legacy number {record.legacy_number} is used twice in this file")
            numbers.add(record.legacy_number)
        if record.slug:
            if record.slug in slugs:
                raise CatalogueError(record.where, f"slug {record.slug!r} is used twice in this file")
            slugs.add(record.slug)


def _collection(name: str | None) -> Collection | None:
    """The collection every imported idea joins, created when missing; None for none."""
    if not name or not name.strip():
        return None
    return collections_from_names([name])[0]


def _match(record: IdeaRecord, by_number: dict[int, Idea], by_slug: dict[str, Idea]) -> Idea | None:
    if record.legacy_number is not None and record.legacy_number in by_number:
        return by_number[record.legacy_number]
    found = by_slug.get(record.slug) if record.slug else None
    # A slug match must not steal an idea that already has another legacy number.
    if found is not None and (record.legacy_number is None or found.legacy_number is None):
        return found
    return None


def _create(record: IdeaRecord) -> Idea:
    idea = Idea.objects.create(
        title=record.title,
        # An exported slug is kept when it is free; `unique_slug` returns it unchanged then.
        slug=unique_slug(record.slug or record.title),
        kind=record.kind,
        body=record.body,
        excerpt=idea_excerpt(record.body),
        status=record.status,
        imported_votes=record.votes,
        score=record.votes,
        legacy_number=record.legacy_number,
    )
    tags = _tag_names(record)
    if tags:
        idea.tags.set(tags_from_names(tags))
    if record.collections:
        idea.collections.set(collections_from_names(record.collections))
    return idea


def _slug(name: str) -> str:
    return slugify(" ".join(name.split()))


def _slugs(names: tuple[str, ...]) -> set[str]:
    return {_slug(name) for name in names}


def _tag_names(record: IdeaRecord) -> tuple[str, ...]:
    """The tags the file names, then the derived ones it does not name already."""
    named = record.tags or ()
    named_slugs = _slugs(named)
    return (*named, *(name for name in record.derived_tags if _slug(name) not in named_slugs))


def _update_tags(idea: Idea, record: IdeaRecord) -> bool:
    """The file's tags (when it names them) plus the derived ones; True when the idea's tags changed."""
    current = {tag.slug for tag in idea.tags.all()}
    if record.tags is not None:
        wanted = _tag_names(record)
        if _slugs(wanted) == current:
            return False
        idea.tags.set(tags_from_names(wanted))
        return True
    missing = tuple(name for name in record.derived_tags if _slug(name) not in current)
    if missing:
        idea.tags.add(*tags_from_names(missing))
    return bool(missing)


def _update(idea: Idea, record: IdeaRecord, *, source: str) -> bool:
    """Bring an existing idea in line with its record; True when anything changed."""
    fields = {"title": record.title, "kind": record.kind, "body": record.body}
    if record.legacy_number is not None:
        fields["legacy_number"] = record.legacy_number
    changed = [name for name, value in fields.items() if getattr(idea, name) != value]
    for name in changed:
        setattr(idea, name, fields[name])
    if "body" in changed:
        idea.excerpt = idea_excerpt(idea.body)
        changed.append("excerpt")
    if changed:
        idea.save(update_fields=[*changed, "updated_at"])
    # Kind first: the new status has to fit the new kind.
    status_changed = idea_set_status(
        idea=idea,
        status=record.status,
        user=None,
        reason=f"Catalogue import: {source}:{record.where} says {record.status}.",
    )
    votes_delta = record.votes - idea.imported_votes
    if votes_delta:
        # Only the imported part moves: live votes counted in the score stay.
        Idea.objects.filter(pk=idea.pk).update(imported_votes=record.votes, score=F("score") + votes_delta)
    tags_changed = _update_tags(idea, record)
    collections = record.collections
    collections_changed = collections is not None and _slugs(collections) != {c.slug for c in idea.collections.all()}
    if collections_changed:
        idea.collections.set(collections_from_names(collections))
    return bool(changed or status_changed or votes_delta or tags_changed or collections_changed)


def _resolve_links(pairs: list[tuple[Idea, IdeaRecord]]) -> tuple[int, int]:
    """Add each record's links whose target exists; (links added, targets not found)."""
    wanted: list[tuple[Idea, LinkRecord]] = [(idea, link) for idea, record in pairs for link in record.links]
    numbers = {link.target for _, link in wanted if isinstance(link.target, int)}
    slugs = {link.target for _, link in wanted if isinstance(link.target, str)}
    by_number = {idea.legacy_number: idea for idea in Idea.objects.filter(legacy_number__in=numbers)}
    by_slug = {idea.slug: idea for idea in Idea.objects.filter(slug__in=slugs)}
    sources = [idea.pk for idea, _ in pairs]
    existing = set(IdeaLink.objects.filter(source__in=sources).values_list("source_id", "target_id", "link_type"))
    added = not_found = 0
    for source, link in wanted:
        target = (by_number if isinstance(link.target, int) else by_slug).get(link.target)
        if target is None:
            not_found += 1
        elif target.pk != source.pk and (source.pk, target.pk, link.link_type) not in existing:
            idea_link_add(source=source, target=target, link_type=link.link_type)
            existing.add((source.pk, target.pk, link.link_type))
            added += 1
    return added, not_found


@transaction.atomic
def catalogue_import(*, catalogue: Catalogue, collection: str | None = None, source: str = "") -> ImportSummary:
    """Create or update one idea per record, then add the links; all or nothing.

    `collection` names a collection every imported idea joins (created when
    missing). `source` names the file in status-change reasons. Raises
    CatalogueError (where + reason) for a record the database refuses, and
    ValidationError for a collection name without letters or digits.
    Exports carry each idea's score as its votes: importing one into the
    database it came from adds the live votes a second time, as imported votes.
    """
    _check_records(catalogue.records)
    source = source or "catalogue"
    numbers = [r.legacy_number for r in catalogue.records if r.legacy_number is not None]
    slugs = [r.slug for r in catalogue.records if r.slug]
    prefetch = ("tags", "collections")
    by_number = {i.legacy_number: i for i in Idea.objects.filter(legacy_number__in=numbers).prefetch_related(*prefetch)}
    by_slug = {i.slug: i for i in Idea.objects.filter(slug__in=slugs).prefetch_related(*prefetch)}
    joined = _collection(collection)
    members = set(joined.ideas.values_list("pk", flat=True)) if joined else set()

    created = updated = 0
    pairs: list[tuple[Idea, IdeaRecord]] = []
    for record in catalogue.records:
        if joined is not None and record.collections is not None:
            # An export names all of an idea's collections: the joined one is one more.
            record = replace(record, collections=(*record.collections, joined.name))
        try:
            idea = _match(record, by_number, by_slug)
            if idea is None:
                idea = _create(record)
                created += 1
            else:
                changed = _update(idea, record, source=source)
                updated += changed or (joined is not None and idea.pk not in members)
            if joined is not None and record.collections is None:
                idea.collections.add(joined)
        except ValidationError as error:
            reasons = "; ".join(message for messages in error.message_dict.values() for message in messages)
            raise CatalogueError(record.where, reasons) from None
        pairs.append((idea, record))

    links_added, not_found = _resolve_links(pairs)
    unchanged = len(pairs) - created - updated
    return ImportSummary(created, updated, unchanged, links_added, not_found)


def catalogue_records(*, ideas: QuerySet[Idea] | None = None) -> list[IdeaRecord]:
    """Export records of `ideas` in their order (e.g. a filtered list); by default every idea, in catalogue
    order (legacy number, then the rest by id)."""
    if ideas is None:
        ideas = Idea.objects.order_by(F("legacy_number").asc(nulls_last=True), "id")
    # A list from `idea_list` reads only the columns a list shows, and prefetches names only: a record
    # needs the body, so every column is read again (but the search document), with the record's prefetches.
    ideas = (
        ideas.defer(None)
        .defer("search_vector")
        .prefetch_related(None)
        .prefetch_related(
            "tags", "collections", Prefetch("links_out", queryset=IdeaLink.objects.select_related("target"))
        )
    )
    records = []
    for idea in ideas:
        links = sorted(
            (
                LinkRecord(link_type=link.link_type, target=link.target.legacy_number or link.target.slug)
                for link in idea.links_out.all()
            ),
            key=lambda link: (link.link_type, str(link.target)),
        )
        records.append(
            IdeaRecord(
                where=f"idea {idea.pk}",
                title=idea.title,
                kind=idea.kind,
                status=idea.status,
                votes=idea.score,
                body=idea.body,
                legacy_number=idea.legacy_number,
                slug=idea.slug,
                tags=tuple(tag.name for tag in idea.tags.all()),
                collections=tuple(c.name for c in idea.collections.all()),
                links=tuple(links),
            )
        )
    return records


def catalogue_export(*, file_format: str, ideas: QuerySet[Idea] | None = None) -> str:
    """`ideas` (by default the whole catalogue) as `file_format` ("json" or "csv") text that `import_ideas`
    reads back; `manage.py export_ideas` and the API's export both write it here, so they cannot drift.
    ValueError for an unknown format, or a name CSV cannot hold."""
    if file_format not in WRITERS:
        raise ValueError(f"Unknown export format {file_format!r}; choose one of {', '.join(WRITERS)}.")
    return WRITERS[file_format](catalogue_records(ideas=ideas))
