"""Small helpers for the sentences kinds state as findings: head names, lists and counts in words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def head_name(layer: int, head: int) -> str:
    """L1H3: layer 1, head 3 (TransformerLens' numbering, from 0)."""
    return f"L{layer}H{head}"


def heads_text(heads: Iterable[Sequence[int]], limit: int = 6) -> str:
    """'L1H3, L1H5 and 2 more'; 'none' for no heads."""
    names = [head_name(layer, head) for layer, head in heads]
    if not names:
        return "none"
    if len(names) > limit:
        return f"{', '.join(names[:limit])} and {len(names) - limit} more"
    return ", ".join(names)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """1 head, 3 heads, no heads."""
    word = noun if n == 1 else (plural or f"{noun}s")
    return f"{n} {word}" if n else f"no {word}"


def layers_label(n_layers: int) -> str:
    """'1 layer', '2 layers': a model by its depth."""
    return f"{n_layers} layer{'s' if n_layers != 1 else ''}"


def head_types_text(types: Sequence[str]) -> str:
    """['previous_token'] -> 'previous-token'; [] -> 'untyped'."""
    return "/".join(t.replace("_", "-") for t in types) or "untyped"


def head_cost_text(row: Mapping[str, Any], digits: int = 3) -> str:
    """'L0H1 (previous-token, +0.650 nats)': a head of an ablation ranking, its types and what ablating it cost."""
    cost = f"+{row['loss_increase']:.{digits}f} nats"
    return f"{head_name(row['layer'], row['head'])} ({head_types_text(row['types'])}, {cost})"
