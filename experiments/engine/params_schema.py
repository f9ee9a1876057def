"""Reading a kind's params JSON Schema (pydantic's `model_json_schema()`): `$ref`s, nullable fields,
tagged unions, and a value made of the defaults.

The add-an-experiment form starts from `default_params` and the spec cards compare a spec's params with
it; the browser's form builder (static/js/param_form.js) reads the same schema the same way.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel

from experiments.engine.errors import InvalidParams
from experiments.engine.registry import Kind

Schema = dict[str, Any]


def params_schema_of(kind: Kind) -> Schema:
    """`kind.params_schema()`, built once per params model (a page of spec cards reads it for each card).

    Shared: read it, do not change it.
    """
    return _schema_of(kind.params_model)


@cache
def _schema_of(params_model: type[BaseModel]) -> Schema:
    return params_model.model_json_schema()


def resolve(schema: Schema, defs: Schema) -> Schema:
    """Follow `$ref` and single-item `allOf` into `$defs`, keeping the outer keys (title, default)."""
    for _ in range(20):  # refs never nest this deep; the bound only stops a cycle
        if "$ref" in schema:
            target = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        elif len(schema.get("allOf", ())) == 1:
            schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        else:
            break
    return schema


def split_nullable(schema: Schema, defs: Schema) -> tuple[Schema, bool]:
    """(the schema without its null branch, whether null is allowed): `X | None` is X, optional."""
    schema = resolve(schema, defs)
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}, True
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if branches and any(branch.get("type") == "null" for branch in branches):
            rest = [branch for branch in branches if branch.get("type") != "null"]
            outer = {k: v for k, v in schema.items() if k != key}
            inner = {**resolve(rest[0], defs), **outer} if len(rest) == 1 else {**outer, key: rest}
            return resolve(inner, defs), True
    return schema, False


def union_branches(schema: Schema, defs: Schema) -> tuple[str, dict[Any, Schema]] | None:
    """For a union of objects told apart by one constant property (`{"source": "native", ...}` or
    `{"source": "run", ...}`): that property's name and each branch by its value. None for anything else."""
    branches = [resolve(branch, defs) for branch in schema.get("oneOf") or schema.get("anyOf") or ()]
    if len(branches) < 2:
        return None
    tag = (schema.get("discriminator") or {}).get("propertyName")
    if tag is None:  # an untagged union of objects: the first constant property they share
        consts = [name for name, prop in branches[0].get("properties", {}).items() if "const" in prop]
        tag = consts[0] if consts else None
    if tag is None:
        return None
    by_value = {}
    for branch in branches:
        prop = branch.get("properties", {}).get(tag, {})
        if "const" not in prop:
            return None
        by_value[prop["const"]] = branch
    return tag, by_value


def example(schema: Schema, defs: Schema, depth: int = 0) -> Any:
    """A value of this schema made of its defaults (the first alternative of a union): a starting point to edit.

    Required fields without a default are left out, so the result may still need them filled in.
    """
    schema = resolve(schema, defs)
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    if depth > 8:
        return None
    for key in ("oneOf", "anyOf"):
        branches = [branch for branch in schema.get(key, ()) if branch.get("type") != "null"]
        if branches:
            return example(branches[0], defs, depth + 1)
    if "properties" in schema:
        return {
            name: example(prop, defs, depth + 1)
            for name, prop in schema["properties"].items()
            if "default" in resolve(prop, defs) or "const" in resolve(prop, defs) or _has_example(prop, defs)
        }
    return {"integer": schema.get("minimum", 0), "number": schema.get("minimum", 0.0), "boolean": False}.get(
        schema.get("type"), [] if schema.get("type") == "array" else None
    )


def _has_example(prop: Schema, defs: Schema) -> bool:
    """A required object or union of objects still gets a starting value; a required number or name does not."""
    schema = resolve(prop, defs)
    return "properties" in schema or bool(schema.get("oneOf") or schema.get("anyOf"))


def default_params(kind: Kind) -> dict[str, Any]:
    """The kind's params with every default filled in (a required union takes its first alternative).

    When a required field has no default, the example is returned as it is: the form still starts from it
    and the kind names what is missing.
    """
    if kind.params_model not in _DEFAULTS:  # once per params model: every spec card and run page asks
        schema = params_schema_of(kind)
        start = example(schema, schema.get("$defs", {}))
        try:
            _DEFAULTS[kind.params_model] = kind.normalized_params(kind.parse_params(start))
        except InvalidParams:
            _DEFAULTS[kind.params_model] = start
    return copy.deepcopy(_DEFAULTS[kind.params_model])


_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}
