"""A spec's params as a short readable list: only what differs from its kind's defaults.

`training.steps = 1000`, `depths = 1, 2`, `model.source = run`, `model.run = 12`. Nested params are
named by their dotted path, lists are written out with commas, and choosing another alternative of a
tagged union (a run's checkpoint instead of a native model) names the choice and then only what differs
from that alternative's own defaults. An empty list means every param is the kind's default.
"""

from __future__ import annotations

import json
from typing import Any

from experiments.engine.params_schema import (
    Schema,
    default_params,
    example,
    params_schema_of,
    resolve,
    split_nullable,
    union_branches,
)
from experiments.engine.registry import Kind

VALUE_TEXT_LIMIT = 60
_ABSENT = object()  # a default the kind does not have (a required field, a new alternative's field)


def params_diff(params: dict[str, Any] | None, kind: Kind | None) -> list[tuple[str, Any]]:
    """(dotted path, value) for each param that differs from the kind's default, in the schema's order.

    Without the kind (no longer registered) nothing is known of its defaults: every param that is set.
    """
    if kind is None:
        found: list[tuple[str, Any]] = []
        _walk(params or {}, _ABSENT, {}, {}, "", found)
        return [(path, value) for path, value in found if value is not None]
    schema = params_schema_of(kind)
    found = []
    _walk(params or {}, default_params(kind), schema, schema.get("$defs", {}), "", found)
    return found


def params_text(params: dict[str, Any] | None, kind: Kind | None) -> list[str]:
    """['training.steps = 1000', 'depths = 1, 2']: `params_diff` as lines; [] when all are defaults."""
    return [f"{path} = {value_text(value)}" for path, value in params_diff(params, kind)]


def value_text(value: Any) -> str:
    """None -> 'none', True -> 'true', 0.003 -> '0.003', [1, 2, 4] -> '1, 2, 4', an object -> short JSON."""
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    elif isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        text = ", ".join(value_text(item) for item in value) if value else "(empty)"
    elif isinstance(value, dict | list):
        text = json.dumps(value, separators=(", ", ": "))
    else:
        text = str(value)
    return text if len(text) <= VALUE_TEXT_LIMIT else text[: VALUE_TEXT_LIMIT - 1] + "…"


def _walk(value: Any, default: Any, schema: Schema, defs: Schema, path: str, found: list[tuple[str, Any]]) -> None:
    schema, _ = split_nullable(schema, defs)
    if not isinstance(value, dict):
        if value != default or default is _ABSENT:
            found.append((path or "params", value))
        return
    union = union_branches(schema, defs)
    if union is not None and value.get(union[0]) in union[1]:
        tag, branches = union
        branch = resolve(branches[value[tag]], defs)
        if not isinstance(default, dict) or default.get(tag) != value[tag]:
            # Another alternative: name the choice, then compare with that alternative's own defaults.
            found.append((_join(path, tag), value[tag]))
            default = example(branch, defs)
        schema = branch
    properties = schema.get("properties", {})
    for name, item in value.items():
        item_default = default.get(name, _ABSENT) if isinstance(default, dict) else _ABSENT
        _walk(item, item_default, properties.get(name, {}), defs, _join(path, name), found)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
