"""Reads of the catalogue, shared by the pages and the API.

The selectors own the joins and prefetches, so a list costs the same few
queries whatever its length and whoever shows it.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BooleanField, CharField, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from ideas.models import Collection, Idea, IdeaKind, IdeaLink, IdeaStatus, StatusChange, Tag, Vote
from ideas.rendering import IDEA_REFERENCE

ORDERINGS: dict[str, tuple[str, ...]] = {
    "score": ("score", "id"),
    "-score": ("-score", "id"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
}
SEARCH_MAX = 200
# More words than a person types: a longer query only makes PostgreSQL combine more index lists.
SEARCH_MAX_WORDS = 32
# The text-search configuration of the stored `Idea.search_vector` (migration 0003); queries must use the same.
SEARCH_CONFIG = "english"
# The columns a list row shows, on the page and in the API: never the body or the search document.
LIST_COLUMNS = (
    "id",
    "legacy_number",
    "slug",
    "title",
    "kind",
    "status",
    "score",
    "excerpt",
    "created_at",
    "updated_at",
    "author",
    "author__username",
)


@dataclass(frozen=True)
class IdeaFilters:
    """What a list of ideas is narrowed and sorted by. Empty strings mean "any"."""

    search: str = ""
    kind: str = ""
    status: str = ""
    tag: str = ""  # a tag slug
    collection: str = ""  # a collection slug
    author: str = ""  # a username
    ordering: str = ""  # one of ORDERINGS; empty: relevance when searching, else -score
    has_experiments: bool | None = None  # True: only ideas with experiment specs; False: only those without

    def validate(self) -> None:
        """Raise ValidationError naming the field for values that cannot match anything sensible.

        Unknown tags and collections are errors too: a typo should not look like an empty result.
        """
        errors: dict[str, str] = {}
        if self.kind and self.kind not in IdeaKind.values:
            errors["kind"] = f"Unknown kind {self.kind!r}; choose one of {', '.join(IdeaKind.values)}."
        if self.status and self.status not in IdeaStatus.values:
            errors["status"] = f"Unknown status {self.status!r}; choose one of {', '.join(IdeaStatus.values)}."
        if self.ordering and self.ordering not in ORDERINGS:
            errors["ordering"] = f"Unknown ordering {self.ordering!r}; choose one of {', '.join(ORDERINGS)}."
        if search_error := _search_error(self.search):
            errors["search"] = search_error
        if self.tag and not Tag.objects.filter(slug=self.tag).exists():
            errors["tag"] = f"No tag with slug {self.tag!r}."
        if self.collection and not Collection.objects.filter(slug=self.collection).exists():
            errors["collection"] = f"No collection with slug {self.collection!r}."
        if errors:
            raise ValidationError(errors)


def _search_error(text: str) -> str:
    """Why a search cannot run ('' when it can): too long, too many words, or control characters."""
    if len(text) > SEARCH_MAX:
        return f"At most {SEARCH_MAX} characters (this search has {len(text)})."
    words = len(text.split())
    if words > SEARCH_MAX_WORDS:
        return f"At most {SEARCH_MAX_WORDS} words (this search has {words})."
    if any(unicodedata.category(char) == "Cc" and not char.isspace() for char in text):
        return "Control characters are not allowed in a search."
    return ""


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _search_terms(text: str) -> tuple[int, bool]:
    """(how many nodes PostgreSQL's parser keeps of `text`, whether the GIN index can answer it), from one
    query on no table. No nodes: only stop words such as "the and of", or punctuation. Not indexable: only
    excluded words ("-word"), which would match nearly every row by reading them all."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT numnode(q), querytree(q) <> 'T' FROM websearch_to_tsquery(%s::regconfig, %s) AS q",
            [SEARCH_CONFIG, text],
        )
        nodes, indexable = cursor.fetchone()
        return nodes, indexable


def _search(qs: QuerySet[Idea], text: str) -> QuerySet[Idea]:
    text = text.strip()
    if not text:
        return qs
    if _is_postgres():
        nodes, indexable = _search_terms(text)
        if nodes == 0:
            return qs.none()  # answered at once: no word to look for
        if not indexable:
            raise ValidationError(
                {
                    "search": "Give at least one word to look for; excluded words (-word) alone would match "
                    "nearly every idea."
                }
            )
        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        # The stored document (GIN-indexed) answers the match; the rank reads it too, recomputing nothing.
        # Filter on the match (@@), not on rank > 0: ts_rank gives some non-matching rows 1e-20, not 0.
        return qs.filter(search_vector=query).alias(rank=SearchRank(F("search_vector"), query))
    # SQLite: every word must appear in the title or the body.
    for word in text.split():
        qs = qs.filter(Q(title__icontains=word) | Q(body__icontains=word))
    return qs


def _with_voted(qs: QuerySet[Idea], user) -> QuerySet[Idea]:
    if user is not None and user.is_authenticated:
        return qs.annotate(voted=Exists(Vote.objects.filter(idea=OuterRef("pk"), user=user)))
    return qs.annotate(voted=Value(False, output_field=BooleanField()))


def _with_experiments(qs: QuerySet[Idea]) -> QuerySet[Idea]:
    """Each idea's experiments as the list marks them, in the same query: `has_experiments`,
    `experiment_count` (specs), `run_count` (their runs, in any state) and `latest_verdict` (the
    verdict of its newest succeeded run that has one, '' if none).

    `ideas` imports nothing of `experiments` (which builds on it), so the models come from the app
    registry. The latest verdict is the one `experiments.selectors.idea_evidence` calls latest: the
    same runs count (succeeded, with a verdict) in the same order (LATEST_FINISHED_FIRST).
    """
    spec_model = apps.get_model("experiments", "ExperimentSpec")
    run_model = apps.get_model("experiments", "ExperimentRun")
    specs = spec_model.objects.filter(idea=OuterRef("pk")).order_by()
    runs = run_model.objects.filter(spec__idea=OuterRef("pk")).order_by()
    latest_verdict = (
        runs.filter(status="succeeded")
        .exclude(verdict="")
        .order_by(F("finished_at").desc(nulls_last=True), F("pk").desc())
        .values("verdict")[:1]
    )
    return qs.annotate(
        has_experiments=Exists(specs),
        experiment_count=Coalesce(Subquery(specs.values("idea").annotate(n=Count("pk")).values("n")), 0),
        run_count=Coalesce(Subquery(runs.values("spec__idea").annotate(n=Count("pk")).values("n")), 0),
        latest_verdict=Coalesce(Subquery(latest_verdict), Value(""), output_field=CharField()),
    )


def _filtered(filters: IdeaFilters) -> QuerySet[Idea]:
    """Ideas matching `filters`, in the list's order, with nothing annotated: the base of both list reads."""
    filters.validate()
    qs = Idea.objects.all()
    if filters.has_experiments is not None:
        has_specs = Exists(apps.get_model("experiments", "ExperimentSpec").objects.filter(idea=OuterRef("pk")))
        qs = qs.filter(has_specs if filters.has_experiments else ~has_specs)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.tag:
        qs = qs.filter(tags__slug=filters.tag)
    if filters.collection:
        qs = qs.filter(collections__slug=filters.collection)
    if filters.author:
        qs = qs.filter(author__username=filters.author)
    qs = _search(qs, filters.search)
    if "rank" in qs.query.annotations and not filters.ordering:  # a PostgreSQL search with words to rank by
        return qs.order_by("-rank", "-score", "id")
    return qs.order_by(*ORDERINGS[filters.ordering or "-score"])


def idea_list(*, filters: IdeaFilters, user=None) -> QuerySet[Idea]:
    """Ideas matching `filters`, each with `voted` for `user` and its experiments (see `_with_experiments`),
    tags and collections prefetched.

    Only the columns a list shows are read (`LIST_COLUMNS`: the stored excerpt, not the body; the author's
    username, not the whole user), and only the names and slugs of tags and collections, as plain lists
    (`listed_tags`, `listed_collections`: a row reads them without building a related manager per idea).
    A page of rows is cheaper through `idea_list_rows` and `idea_rows_complete`; this one gives model
    instances, for the export and for anything that needs an `Idea`.
    """
    qs = (
        _filtered(filters)
        .select_related("author")
        .only(*LIST_COLUMNS)
        .prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("name", "slug"), to_attr="listed_tags"),
            Prefetch("collections", queryset=Collection.objects.only("name", "slug"), to_attr="listed_collections"),
        )
    )
    return _with_voted(_with_experiments(qs), user)


def idea_list_rows(*, filters: IdeaFilters, user=None) -> QuerySet[dict]:
    """`idea_list`'s ideas in its order as plain dicts of `LIST_COLUMNS` and `voted` (for `user`), for a
    page to slice and then complete with `idea_rows_complete`.

    No model instances and no correlated subqueries: PostgreSQL spent longer planning `idea_list`'s
    page query (four subqueries per row) than running it, and building instances cost as much again.
    The count of this queryset is the bare filtered count.
    """
    return _with_voted(_filtered(filters), user).values(*LIST_COLUMNS, "voted")


def idea_rows_complete(rows: list[dict]) -> list[dict]:
    """Add to each row (from `idea_list_rows`) what `idea_list` annotates and prefetches, in place:
    `tags` and `collections` ([{"name", "slug"}] in name order), `has_experiments`, `experiment_count`,
    `run_count` and `latest_verdict` (as `_with_experiments` defines them).

    Two queries for the whole page, whatever its length, each by idea id: the tags and collections
    together, and the experiments.
    """
    if not rows:
        return rows
    ids = [row["id"] for row in rows]
    tags, collections = _names_by_idea(ids)
    counts = _experiments_by_idea(ids)
    for row in rows:
        idea_id = row["id"]
        specs, runs, verdict = counts.get(idea_id, (0, 0, ""))
        row["tags"] = tags.get(idea_id, [])
        row["collections"] = collections.get(idea_id, [])
        row["has_experiments"] = specs > 0
        row["experiment_count"] = specs
        row["run_count"] = runs
        row["latest_verdict"] = verdict
    return rows


# The two queries that complete a page of rows are plain SQL: the ORM spent longer compiling each (about
# 1.5 ms) than the database spent answering it, and the grouped ORM query put the verdict's subquery in its
# GROUP BY, running it once per run instead of once per idea. Table and column names come from the models.
_IN_IDS = "{in_ids}"


@functools.cache
def _names_sql() -> str:
    """Tags and collections of the ideas `{in_ids}`: (relation, idea id, name, slug), in name order."""

    def select(relation: str) -> str:
        through = Idea._meta.get_field(relation).remote_field.through._meta
        target = through.get_field(relation.rstrip("s")).related_model._meta
        target_column = through.get_field(relation.rstrip("s")).column
        return (
            f"SELECT '{relation}' AS relation, link.idea_id AS idea_id, named.name AS name, named.slug AS slug "
            f"FROM {through.db_table} link INNER JOIN {target.db_table} named ON named.id = link.{target_column} "
            f"WHERE link.idea_id IN ({_IN_IDS})"
        )

    return f"{select('tags')} UNION ALL {select('collections')} ORDER BY name"


@functools.cache
def _experiments_sql() -> str:
    """Per idea of `{in_ids}` with specs: (idea id, specs, their runs, latest verdict or '')."""
    spec = apps.get_model("experiments", "ExperimentSpec")._meta.db_table
    run = apps.get_model("experiments", "ExperimentRun")._meta.db_table
    return (
        "SELECT spec.idea_id, COUNT(DISTINCT spec.id), COUNT(run.id), "
        f"COALESCE((SELECT latest.verdict FROM {run} latest INNER JOIN {spec} latest_spec "
        "ON latest_spec.id = latest.spec_id WHERE latest_spec.idea_id = spec.idea_id "
        "AND latest.status = 'succeeded' AND latest.verdict <> '' "
        "ORDER BY latest.finished_at DESC NULLS LAST, latest.id DESC LIMIT 1), '') "
        f"FROM {spec} spec LEFT OUTER JOIN {run} run ON run.spec_id = spec.id "
        f"WHERE spec.idea_id IN ({_IN_IDS}) GROUP BY spec.idea_id"
    )


def _fetch(sql: str, ids: list[int], times: int) -> list[tuple]:
    """Rows of `sql` with its `{in_ids}` places (`times` of them) filled with `ids` as parameters."""
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(sql.replace(_IN_IDS, placeholders), ids * times)
        return cursor.fetchall()


def _names_by_idea(ids: list[int]) -> tuple[dict[int, list[dict[str, str]]], dict[int, list[dict[str, str]]]]:
    """({idea id: its tags}, {idea id: its collections}), each a [{"name", "slug"}] in name order, in one query."""
    tags: dict[int, list[dict[str, str]]] = {}
    collections: dict[int, list[dict[str, str]]] = {}
    for relation, idea_id, name, slug in _fetch(_names_sql(), ids, 2):
        (tags if relation == "tags" else collections).setdefault(idea_id, []).append({"name": name, "slug": slug})
    return tags, collections


def _experiments_by_idea(ids: list[int]) -> dict[int, tuple[int, int, str]]:
    """{idea id: (experiment specs, their runs, latest verdict)} for the ideas that have specs, in one query;
    the counts and the verdict as `_with_experiments` defines them."""
    return {idea_id: (specs, runs, verdict) for idea_id, specs, runs, verdict in _fetch(_experiments_sql(), ids, 1)}


def idea_detail(*, pk: int, user=None) -> Idea:
    """One idea with everything its page shows; raises Idea.DoesNotExist."""
    qs = (
        Idea.objects.select_related("author")
        .defer("search_vector")
        .prefetch_related(
            "tags",
            "collections",
            Prefetch("links_out", queryset=IdeaLink.objects.select_related("target").order_by("target__title")),
            Prefetch("links_in", queryset=IdeaLink.objects.select_related("source").order_by("source__title")),
            Prefetch("status_changes", queryset=StatusChange.objects.select_related("changed_by")),
        )
    )
    return _with_voted(_with_experiments(qs), user).get(pk=pk)


def tag_list() -> QuerySet[Tag]:
    """Tags with how many ideas carry each."""
    return Tag.objects.annotate(idea_count=Count("ideas")).order_by("name")


def collection_list() -> QuerySet[Collection]:
    """Collections with how many ideas each holds."""
    return Collection.objects.annotate(idea_count=Count("ideas")).order_by("name")


def idea_status_history(*, pk: int) -> QuerySet[StatusChange]:
    """The status changes of one idea, newest first, with who made each; raises Idea.DoesNotExist."""
    if not Idea.objects.filter(pk=pk).exists():
        raise Idea.DoesNotExist(f"No idea with id {pk}.")
    return StatusChange.objects.filter(idea_id=pk).select_related("changed_by")


# --- an idea's addresses: small reads for redirects, actions and the body's "idea #N" links ---
def idea_get(*, pk: int) -> Idea:
    """The idea with this primary key; raises Idea.DoesNotExist."""
    return Idea.objects.get(pk=pk)


def idea_get_by_legacy_number(*, number: int) -> Idea:
    """The idea with this catalogue number; raises Idea.DoesNotExist."""
    return Idea.objects.only("pk", "slug").get(legacy_number=number)


def idea_urls_by_legacy_number(numbers: Iterable[int]) -> dict[int, str]:
    """Canonical URLs of the ideas with these catalogue numbers (missing numbers are left out)."""
    numbers = set(numbers)
    if not numbers:
        return {}
    rows = Idea.objects.filter(legacy_number__in=numbers).only("pk", "slug", "legacy_number")
    return {idea.legacy_number: idea.get_absolute_url() for idea in rows}


def idea_reference_urls(idea: Idea) -> dict[int, str]:
    """URLs for every "idea #N" its body mentions: linked ideas first (already prefetched), then one query.

    `idea` should come from `idea_detail`, whose prefetched links cost nothing here.
    """
    urls: dict[int, str] = {}
    for link in idea.links_out.all():
        if link.target.legacy_number is not None:
            urls[link.target.legacy_number] = link.target.get_absolute_url()
    for link in idea.links_in.all():
        if link.source.legacy_number is not None:
            urls[link.source.legacy_number] = link.source.get_absolute_url()
    mentioned = {int(number) for number in IDEA_REFERENCE.findall(idea.body or "")}
    urls.update(idea_urls_by_legacy_number(mentioned - urls.keys()))
    return urls
