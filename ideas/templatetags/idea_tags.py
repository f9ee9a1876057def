"""Template filters of the catalogue pages."""

from django import template

from ideas.rendering import plain_excerpt

register = template.Library()


@register.filter
def excerpt(body: str, length: int = 220) -> str:
    """A short plain-text preview of a markdown body (autoescaped like any text)."""
    return plain_excerpt(body, length)
