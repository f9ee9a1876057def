"""The add-an-experiment form, built from the chosen kind's JSON Schema.

Each property of `kind.params_schema()` (pydantic v2) becomes one field named
`params.<name>`: integers and numbers a number input with the schema's bounds,
booleans a checkbox, enums and Literals a select, `X | None` an optional field,
and anything nested (objects, lists, unions, `$ref`s) a JSON textarea prefilled
with its default. The criterion's fields are `criterion.<name>`. Those names are
the ones `spec_create`'s ValidationError uses, so every message lands next to
its field. Like the catalogue's forms, this one only checks the shape of the
input (is it a number, is it JSON); the service and the kind's Params decide
what is allowed.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from experiments.engine.registry import Kind
from experiments.models import Comparator, Verdict
from experiments.services.specs import SEED_MAX

OMIT = object()  # an empty optional param: left out, so the kind's default applies
COMPARATOR_SYMBOLS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


class JSONTextField(forms.CharField):
    """A textarea holding JSON; empty means "use the default"."""

    widget = forms.Textarea

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "json-input"}))
        super().__init__(**kwargs)

    def validate(self, value: Any) -> None:
        if value is OMIT and self.required:
            raise ValidationError(self.error_messages["required"], code="required")

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if text in self.empty_values:
            return OMIT
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
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


def _split_optional(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the schema without its null branch, whether null is allowed)."""
    schema = _resolve(schema, defs)
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}, True
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if branches and any(branch.get("type") == "null" for branch in branches):
            rest = [branch for branch in branches if branch.get("type") != "null"]
            outer = {k: v for k, v in schema.items() if k != key}
            inner = {**_resolve(rest[0], defs), **outer} if len(rest) == 1 else {**outer, key: rest}
            return _resolve(inner, defs), True
    return schema, False


def _choices(schema: dict[str, Any], defs: dict[str, Any]) -> list[Any] | None:
    """The allowed values of an enum, a Literal (const) or a union of them; None for anything else."""
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        values: list[Any] = []
        for branch in branches:
            found = _choices(_resolve(branch, defs), defs)
            if found is None:
                return None
            values += found
        return values
    return None


def _example(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """A value of this schema made of its defaults (the first alternative of a union): a starting point to edit."""
    schema = _resolve(schema, defs)
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
            return _example(branches[0], defs, depth + 1)
    if "properties" in schema:
        required = set(schema.get("required", ()))
        return {
            name: _example(prop, defs, depth + 1)
            for name, prop in schema["properties"].items()
            if name in required or "default" in prop or "const" in prop
        }
    return {"integer": schema.get("minimum", 0), "number": schema.get("minimum", 0.0), "boolean": False}.get(
        schema.get("type"), [] if schema.get("type") == "array" else None
    )


def _alternatives_text(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """'"source" is one of native, run, pretrained.' for a tagged union; '' otherwise."""
    tag = (schema.get("discriminator") or {}).get("propertyName")
    branches = [_resolve(branch, defs) for branch in schema.get("oneOf") or schema.get("anyOf") or ()]
    if not branches:
        return ""
    if tag is None:  # an untagged union of objects: name the first const property they share
        consts = [name for name, prop in branches[0].get("properties", {}).items() if "const" in prop]
        tag = consts[0] if consts else None
    values = [branch.get("properties", {}).get(tag, {}).get("const") for branch in branches] if tag else []
    if not values or None in values:
        return ""
    return f"“{tag}” is one of {', '.join(map(str, values))}."


def _num(value: float) -> str:
    """10000 -> '10000', 60.0 -> '60', 0.003 -> '0.003'."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds_text(schema: dict[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    parts = []
    if low is not None and high is not None:
        parts.append(f"From {_num(low)} to {_num(high)}.")
    elif low is not None:
        parts.append(f"At least {_num(low)}.")
    elif high is not None:
        parts.append(f"At most {_num(high)}.")
    if above is not None:
        parts.append(f"More than {_num(above)}.")
    if below is not None:
        parts.append(f"Less than {_num(below)}.")
    return " ".join(parts)


def _shown(value: Any) -> str:
    """A default as a reader expects it: none, true/false, 0.5, 'text'."""
    if value is None:
        return "none"
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return _num(value) if isinstance(value, float) else str(value)


def _choice_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def param_field(name: str, prop: dict[str, Any], defs: dict[str, Any], required: bool) -> forms.Field:
    """The form field for one property of a kind's params schema."""
    schema, optional = _split_optional(prop, defs)
    title = prop.get("title") or name.replace("_", " ").capitalize()  # not a $def's class name
    has_default = "default" in prop
    default = prop.get("default")
    help_parts = [prop.get("description") or schema.get("description") or ""]
    common: dict[str, Any] = {"label": title, "required": required and not has_default}
    choices = _choices(schema, defs)
    kind = schema.get("type")

    if choices is not None:
        keyed = {_choice_key(value): value for value in choices}
        options = [(key, key) for key in keyed]
        if optional or not common["required"]:
            options.insert(0, ("", "— none —" if optional else "— default —"))
        field: forms.Field = forms.TypedChoiceField(
            choices=options, coerce=keyed.__getitem__, empty_value=OMIT, **common
        )
        initial = _choice_key(default) if has_default and default is not None else ""
    elif kind == "boolean" and not optional:
        field = forms.BooleanField(label=title, required=False)
        initial = bool(default)
    elif kind == "boolean":
        options = [("", "— none —"), ("true", "true"), ("false", "false")]
        field = forms.TypedChoiceField(choices=options, coerce=lambda v: v == "true", empty_value=OMIT, **common)
        initial = "" if default is None else json.dumps(default)
    elif kind in ("integer", "number"):
        attrs = {key: schema[src] for key, src in (("min", "minimum"), ("max", "maximum")) if src in schema}
        if kind == "integer":
            field = forms.IntegerField(widget=forms.NumberInput(attrs={**attrs, "step": 1}), **common)
        else:
            field = forms.FloatField(widget=forms.NumberInput(attrs={**attrs, "step": "any"}), **common)
        initial = default
        help_parts.append(_bounds_text(schema))
    elif kind == "string":
        attrs = {"maxlength": schema["maxLength"]} if "maxLength" in schema else {}
        field = forms.CharField(widget=forms.TextInput(attrs=attrs), **common)
        initial = default
    else:
        field = JSONTextField(**common)
        help_parts += ["JSON.", _alternatives_text(schema, defs)]
        if has_default and default is not None:
            initial = json.dumps(default, indent=2)
        elif common["required"]:
            initial = json.dumps(_example(schema, defs), indent=2)
            help_parts.append("Prefilled with an example to edit.")
        else:
            initial = ""

    if has_default and not isinstance(field, JSONTextField):
        help_parts.append(f"Default: {_shown(default)}.")
    if optional:
        help_parts.append("Optional: leave empty for none.")
    field.initial = initial
    field.help_text = " ".join(part for part in help_parts if part)
    return field


def param_fields(schema: dict[str, Any]) -> dict[str, forms.Field]:
    """One field per property of a params schema, in the schema's order."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    return {
        name: param_field(name, prop, defs, name in required) for name, prop in schema.get("properties", {}).items()
    }


class SpecForm(forms.Form):
    """Title, description, seed, the kind's params and (for the idea's author or staff) a criterion."""

    kind = forms.CharField(widget=forms.HiddenInput)
    title = forms.CharField(
        max_length=200, help_text="What this experiment checks, in a few words.", widget=forms.TextInput()
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: why these params, what you expect to see.",
    )
    seed = forms.IntegerField(
        initial=0,
        widget=forms.NumberInput(attrs={"min": 0, "max": SEED_MAX, "step": 1}),
        help_text="Seeds torch, numpy and random: a replication with the same seed must give the same result.",
    )

    def __init__(self, data=None, *, kind: Kind, allow_criterion: bool) -> None:
        super().__init__(data, initial={"kind": kind.key})
        self.kind = kind
        self.allow_criterion = allow_criterion
        for name, field in param_fields(kind.params_schema()).items():
            self.fields[f"params.{name}"] = field
        if allow_criterion:
            self.fields.update(criterion_fields(kind))

    def _group(self, prefix: str) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(prefix)]

    @property
    def about_fields(self) -> list[forms.BoundField]:
        return [self["title"], self["description"], self["seed"]]

    @property
    def param_bound_fields(self) -> list[forms.BoundField]:
        return self._group("params.")

    @property
    def criterion_bound_fields(self) -> list[forms.BoundField]:
        return self._group("criterion.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.allow_criterion and not data.get("criterion.metric"):
            if data.get("criterion.threshold") is not None:
                self.add_error("criterion.metric", "Choose the metric the threshold applies to.")
        return data

    def params(self) -> dict[str, Any]:
        """The params dict for `spec_create`: converted values, empty optional ones left out."""
        out = {}
        for name in self.fields:
            if name.startswith("params."):
                value = self.cleaned_data.get(name)
                if value is not OMIT and value is not None and value != "":
                    out[name.removeprefix("params.")] = value
        return out

    def criterion(self) -> dict[str, Any] | None:
        """The criterion dict for `spec_create`, or None when no metric was chosen."""
        if not self.allow_criterion or not self.cleaned_data.get("criterion.metric"):
            return None
        criterion = {
            "metric": self.cleaned_data["criterion.metric"],
            "comparator": self.cleaned_data.get("criterion.comparator"),
            "threshold": self.cleaned_data.get("criterion.threshold"),
            "if_met": self.cleaned_data.get("criterion.if_met"),
        }
        if self.cleaned_data.get("criterion.otherwise"):
            criterion["otherwise"] = self.cleaned_data["criterion.otherwise"]
        return criterion

    def add_service_errors(self, error: ValidationError) -> None:
        """Put each of `spec_create`'s messages next to its field; a nested param's next to its parent."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            field = self._field_for(key)
            if field is None:
                label = "" if key == NON_FIELD_ERRORS else f"{key}: "
                self.add_error(None, [f"{label}{message}" for message in messages])
            elif field == key:
                self.add_error(field, messages)
            else:
                rest = key.removeprefix(field + ".")
                self.add_error(field, [f"{rest}: {message}" for message in messages])

    def _field_for(self, key: str) -> str | None:
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in self.fields and name != "kind":
                return name
        return None


def criterion_fields(kind: Kind) -> dict[str, forms.Field]:
    """The pre-registered criterion: which metric, compared how with what, and what meeting it means."""
    metrics = [("", "— no criterion —")] + [(name, f"{name} — {meaning}") for name, meaning in kind.metrics.items()]
    verdicts = [(Verdict.SUPPORTS.value, "supports the hypothesis"), (Verdict.REFUTES.value, "refutes the hypothesis")]
    return {
        "criterion.metric": forms.ChoiceField(
            label="Metric",
            choices=metrics,
            required=False,
            help_text="Leave at “no criterion” for an exploratory experiment: its runs give no verdict.",
        ),
        "criterion.comparator": forms.ChoiceField(
            label="Comparison",
            choices=[(value, f"{COMPARATOR_SYMBOLS[value]}  {label}") for value, label in Comparator.choices],
            initial=Comparator.GE.value,
            required=False,
        ),
        "criterion.threshold": forms.FloatField(
            label="Threshold", required=False, widget=forms.NumberInput(attrs={"step": "any"})
        ),
        "criterion.if_met": forms.ChoiceField(
            label="If met, the run", choices=verdicts, initial=Verdict.SUPPORTS.value, required=False
        ),
        "criterion.otherwise": forms.ChoiceField(
            label="Otherwise, the run",
            choices=[("", "gives the opposite verdict"), *verdicts, (Verdict.INCONCLUSIVE.value, "is inconclusive")],
            required=False,
        ),
    }
