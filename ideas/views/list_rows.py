"""The list page's rows: `idea_list_rows` dicts with what the template shows, each address built by string
formatting from a pattern reversed once per request.

The page used to hold model instances and ask, per row, `get_absolute_url()` (twice), three `{% url %}`s and
two `get_..._display()`s: a `reverse()` walks the resolver each time. The rows are dicts whose keys also read
as attributes, so templates (which look keys up first) and code that reads `idea.title` both work.
"""

from __future__ import annotations

from django.urls import reverse

from ideas.models import IdeaKind, IdeaStatus

PK_PLACEHOLDER = 918273645
SLUG_PLACEHOLDER = "slug-placeholder"
KIND_LABELS = dict(IdeaKind.choices)
STATUS_LABELS = dict(IdeaStatus.choices)


class ListedIdea(dict):
    """A row of the list page; `row.title` reads `row["title"]`."""

    __slots__ = ()

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _pattern(name: str, **kwargs) -> str:
    """The reversed address of `name` with `{pk}` (and `{slug}`) where the placeholders were, for str.format."""
    path = reverse(name, kwargs={"pk": PK_PLACEHOLDER, **({"slug": SLUG_PLACEHOLDER} if kwargs.get("slug") else {})})
    path = path.replace("{", "{{").replace("}", "}}")
    return path.replace(str(PK_PLACEHOLDER), "{pk}").replace(SLUG_PLACEHOLDER, "{slug}")


def listed_ideas(rows: list[dict]) -> list[ListedIdea]:
    """Rows completed by `idea_rows_complete`, with `pk`, `page_url`, `vote_url`, `api_vote_url`,
    `kind_display`, `status_display` and `is_archived` added, as the list template reads them."""
    page = _pattern("idea-detail", slug=True)
    vote = _pattern("idea-vote")
    api_vote = _pattern("api:idea-vote")
    listed = []
    for row in rows:
        pk = row["id"]
        listed.append(
            ListedIdea(
                row,
                pk=pk,
                page_url=page.format(pk=pk, slug=row["slug"]),
                vote_url=vote.format(pk=pk),
                api_vote_url=api_vote.format(pk=pk),
                kind_display=KIND_LABELS.get(row["kind"], row["kind"]),
                status_display=STATUS_LABELS.get(row["status"], row["status"]),
                is_archived=row["status"] == IdeaStatus.ARCHIVED,
            )
        )
    return listed
