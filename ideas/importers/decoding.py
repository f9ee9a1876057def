"""Bytes to text, with the line of the first byte that is not UTF-8."""

from __future__ import annotations

from ideas.importers.records import CatalogueError


def decode_utf8(data: bytes) -> str:
    """The text of `data` (a leading BOM dropped, line endings made "\\n"); CatalogueError if not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CatalogueError(line, f"not UTF-8: byte 0x{data[error.start]:02x} cannot be decoded") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
