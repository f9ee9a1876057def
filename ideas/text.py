"""What counts as visible text, for titles and names people must be able to read and click."""

from __future__ import annotations

import unicodedata

# Categories that never draw anything on their own: controls, format characters (zero-width
# spaces and joiners, U+2060, U+FEFF, the soft hyphen), surrogates, private use, unassigned,
# separators (spaces, line and paragraph separators) and marks, which only decorate a base letter.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"})

# Letters and symbols that are assigned a visible category but render as blanks.
BLANK_CHARACTERS = frozenset(
    {
        "\u115f",  # HANGUL CHOSEONG FILLER
        "\u1160",  # HANGUL JUNGSEONG FILLER
        "\u3164",  # HANGUL FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "\u2800",  # BRAILLE PATTERN BLANK
    }
)


def is_visible_character(char: str) -> bool:
    if char in BLANK_CHARACTERS or char.isspace():
        return False
    return unicodedata.category(char) not in INVISIBLE_CATEGORIES


def has_visible_text(text: str) -> bool:
    """Whether `text` has at least one character that draws something (not only spaces, marks or zero-widths)."""
    return any(is_visible_character(char) for char in text)


def no_visible_text_message(what: str) -> str:
    return f"{what} needs visible text: it has only spaces or invisible characters (zero-width, control, marks)."


def clean_title(title: str | None, *, max_length: int) -> str:
    """A title with its whitespace collapsed, or a ValidationError naming `title`: required, visible, not too long.

    Ideas and experiment specs both take their titles through here, from the pages and the API alike.
    """
    from django.core.exceptions import ValidationError

    title = " ".join((title or "").split())
    if not title:
        raise ValidationError({"title": "A title is required."})
    if not has_visible_text(title):
        raise ValidationError({"title": no_visible_text_message("A title")})
    if len(title) > max_length:
        raise ValidationError({"title": f"At most {max_length} characters (this one has {len(title)})."})
    return title
