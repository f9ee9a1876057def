"""Each benchmark rewrites its own section of docs/benchmarks.md, between markers, leaving the others."""

from __future__ import annotations

import datetime
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Side-by-side measurements: each script in `benchmarks/` compares two things in
one run on the same machine and reports their ratio. Run them with
`make benchmarks` (or one script directly); each rewrites its own section below.
Timings never appear in tests.
"""


def write_section(key: str, title: str, body: str) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = (
        f"_{datetime.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
        f"{platform.python_version()}_"
    )
    block = f"<!-- {key}:start -->\n## {title}\n\n{stamp}\n\n{body}\n<!-- {key}:end -->"
    pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def contention_note(spread: float, what: str) -> list[str]:
    """Lines to add when repeats disagree (slowest / fastest above 1.25): something else used the CPU."""
    if spread <= 1.25:
        return []
    return [
        "",
        f"Other processes were using the CPU during this run ({what} varied {spread:.1f}x between repeats): "
        "the medians of interleaved repeats are the fair comparison.",
    ]
