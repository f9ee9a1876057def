"""Idea bodies: markdown in, sanitized HTML out.

Bodies are user input. Markdown passes raw HTML through, so everything it
produces is cleaned by nh3 with an allow-list: no scripts, no event-handler
attributes, no `javascript:`/`data:` URLs, no styles. Links get
`rel="nofollow noopener noreferrer"`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import markdown as md
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "abbr": {"title"},
    "td": {"align"},
    "th": {"align"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

# "idea #131", "Idea #7": the catalogue's way of pointing at another idea.
IDEA_REFERENCE = re.compile(r"\b[Ii]dea #(\d{1,7})\b")


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )


def render_markdown(text: str, *, idea_url: Callable[[int], str | None] | None = None) -> str:
    """Markdown to safe HTML. `idea_url(legacy_number)` turns "idea #N" into a link where it returns a URL."""
    if idea_url is not None:

        def link(match: re.Match[str]) -> str:
            url = idea_url(int(match.group(1)))
            return f"[{match.group(0)}]({url})" if url else match.group(0)

        text = IDEA_REFERENCE.sub(link, text)
    html = md.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    return sanitize_html(html)


def plain_excerpt(text: str, length: int = 220) -> str:
    """A short plain-text preview of a markdown body, for lists."""
    rendered = md.markdown(text or "", extensions=["extra"])
    plain = nh3.clean(rendered, tags=set())
    plain = " ".join(html.unescape(plain).split())
    return plain if len(plain) <= length else plain[: length - 1].rsplit(" ", 1)[0] + "…"
