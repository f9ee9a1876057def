"""The add-an-experiment form: title, seed, the kind's params as one JSON object, and a criterion.

The params travel as one field, `params`: a JSON textarea prefilled with the kind's defaults
(`default_params`). With JavaScript, static/js/param_form.js hides it behind "Advanced: edit JSON"
and builds nested fields from the kind's JSON Schema instead, writing the whole params object (every
field, defaults included) back into it on submit; so the server has one path, and without
JavaScript the textarea is the form. The criterion's fields are `criterion.<name>`, the names
`spec_create`'s ValidationError uses. `spec_create` names a bad param by its dotted path
(`params.training.model.n_layers`); `add_service_errors` keeps that path with each message
(`param_errors`), so the page can put the message beside the field it names. Like the
catalogue's forms, this one only checks the shape of the input (is it JSON, is it a number);
the service and the kind's Params decide what is allowed.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from experiments.engine.params_schema import default_params
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

    params = JSONTextField(
        label="Parameters as JSON",
        required=False,
        help_text="One JSON object; a param left out keeps the kind's default, and {} runs every default.",
    )

    def __init__(self, data=None, *, kind: Kind, allow_criterion: bool) -> None:
        defaults = default_params(kind)
        super().__init__(data, initial={"kind": kind.key, "params": json.dumps(defaults, indent=2)})
        self.kind = kind
        self.allow_criterion = allow_criterion
        rows = min(24, max(4, self.initial["params"].count("\n") + 2))
        self.fields["params"].widget.attrs.update(rows=rows, **{"aria-describedby": "id_params_helptext"})
        if allow_criterion:
            self.fields.update(criterion_fields(kind))
        self._param_paths: list[tuple[str, str]] = []

    def _group(self, prefix: str) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(prefix)]

    @property
    def about_fields(self) -> list[forms.BoundField]:
        return [self["title"], self["description"], self["seed"]]

    @property
    def criterion_bound_fields(self) -> list[forms.BoundField]:
        return self._group("criterion.")

    @property
    def param_errors(self) -> list[tuple[str, str]]:
        """(dotted path inside params, message) for each problem with the params; '' for the whole object."""
        if self._param_paths:
            return self._param_paths
        return [("", message) for message in self.errors.get("params", [])]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.allow_criterion and not data.get("criterion.metric"):
            if data.get("criterion.threshold") is not None:
                self.add_error("criterion.metric", "Choose the metric the threshold applies to.")
        return data

    def params_value(self) -> Any:
        """The params for `spec_create` as typed: {} when left empty (every default); the kind checks the rest."""
        value = self.cleaned_data.get("params", OMIT)
        return {} if value is OMIT else value

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
        """Put each of `spec_create`'s messages next to its field; a param's keeps its dotted path."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            if key == "params" or key.startswith("params."):
                path = key.removeprefix("params").removeprefix(".")
                self._param_paths += [(path, message) for message in messages]
                self.add_error("params", [f"{path}: {message}" if path else message for message in messages])
            elif key in self.fields and key != "kind":
                self.add_error(key, messages)
            else:
                label = "" if key == NON_FIELD_ERRORS else f"{key}: "
                self.add_error(None, [f"{label}{message}" for message in messages])


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
