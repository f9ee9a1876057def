"""Experiment specs: validation against the registry, criteria, and the spec hash."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from pydantic import BaseModel

from experiments.engine import ENGINE_VERSION
from experiments.engine.datasets import TextCorpus
from experiments.engine.errors import InvalidParams, ModelNotAvailable, UnknownKind
from experiments.engine.evals.prompt_sets import PromptSetRef
from experiments.engine.models import PretrainedModelRef, RunModelRef, pretrained_location, pretrained_roots
from experiments.engine.registry import Kind, registry
from experiments.models import Comparator, ExperimentSpec, Verdict
from ideas.models import Idea, IdeaKind
from ideas.services import user_can_edit_idea
from ideas.text import clean_title

SEED_MAX = 2**31 - 1
CRITERION_NEEDS_HYPOTHESIS = (
    "Criteria are for hypotheses: this idea is open-ended, so a verdict would change nothing. "
    "Leave the criterion out; the runs still report their metrics."
)
OPPOSITE = {Verdict.SUPPORTS: Verdict.REFUTES, Verdict.REFUTES: Verdict.SUPPORTS}


def kind_get(key: str) -> Kind:
    """The registered kind, or a ValidationError naming `kind`."""
    try:
        return registry.get(key)
    except UnknownKind as exc:
        raise ValidationError({"kind": str(exc)}) from None


def params_validate(kind: Kind, raw: Any) -> BaseModel:
    """The kind's Params, or a ValidationError naming each bad field as `params.<path>`."""
    try:
        params = kind.parse_params(raw)
    except InvalidParams as exc:
        raise ValidationError(
            {("params" if path == "params" else f"params.{path}"): msgs for path, msgs in exc.errors.items()}
        ) from None
    # The kind's own checks read what the references name, so they run once every reference is there.
    errors = _model_reference_errors(params) or _kind_reference_errors(kind, params)
    if errors:
        raise ValidationError(errors)
    return params


def _refs(value: Any, path: str, ref_type: type[BaseModel]) -> list[tuple[str, Any]]:
    """Every reference of `ref_type` (a run's checkpoint, a dataset) inside params, with its dotted path."""
    if isinstance(value, ref_type):
        return [(path, value)]
    if isinstance(value, BaseModel):
        found = []
        for name in type(value).model_fields:
            found += _refs(getattr(value, name), f"{path}.{name}", ref_type)
        return found
    if isinstance(value, list | tuple):
        return [ref for i, item in enumerate(value) for ref in _refs(item, f"{path}.{i}", ref_type)]
    return []


def _model_reference_errors(params: BaseModel) -> dict[str, list[str]]:
    """A reference to another run's checkpoint, or to an uploaded dataset of its type, must exist before anything
    is queued; a pretrained model's name must pass the rule the worker's loader applies (a folder under the listed model
    folders, or a Hugging Face model name), so a bad one is refused when the spec is written, not when it runs."""
    from experiments.models import Artifact, Dataset, RunStatus
    from experiments.storage import dataset_type_message, missing_artifact_message, missing_dataset_message

    errors = {}
    for path, ref in _refs(params, "params", PretrainedModelRef):
        try:
            pretrained_location(ref.name, pretrained_roots())
        except ModelNotAvailable as exc:
            errors[f"{path}.name"] = [str(exc)]
    # A text corpus is read as text and a prompt set as records: a reference of one type to the other is refused.
    for ref_type, prompt_set in ((TextCorpus, False), (PromptSetRef, True)):
        for path, ref in _refs(params, "params", ref_type):
            dataset = Dataset.objects.filter(pk=ref.dataset).only("name", "format").first()
            if dataset is None:
                errors[f"{path}.dataset"] = [missing_dataset_message(ref.dataset)]
            elif dataset.is_prompt_set != prompt_set:
                errors[f"{path}.dataset"] = [dataset_type_message(dataset, prompt_set=prompt_set)]
    for path, ref in _refs(params, "params", RunModelRef):
        artifact = Artifact.objects.filter(run_id=ref.run, name=ref.artifact, run__status=RunStatus.SUCCEEDED).first()
        if artifact is None:
            errors[path] = [missing_artifact_message(ref.run, ref.artifact)]
        elif artifact.artifact_type != "checkpoint":
            errors[path] = [
                f"Run {ref.run}'s artifact {ref.artifact!r} is a {artifact.artifact_type}, not a checkpoint."
            ]
    return errors


def _kind_reference_errors(kind: Kind, params: BaseModel) -> dict[str, list[str]]:
    """What the kind itself requires of the runs and models its params name (a run id whose checkpoints it
    reads, sequences that must fit the model's context), checked through the resolver the worker uses."""
    from experiments.storage import DatabaseReferenceResolver

    if kind.check_references is None:
        return {}
    problems = kind.check_references(params, DatabaseReferenceResolver())
    return {f"params.{path}": [message] for path, message in problems.items()}


def criterion_clean(kind: Kind, raw: Any) -> dict[str, Any] | None:
    """A pre-registered criterion, normalized, or a ValidationError naming `criterion.<field>`."""
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict):
        raise ValidationError({"criterion": "Must be an object with metric, comparator, threshold and if_met."})
    allowed = {"metric", "comparator", "threshold", "if_met", "otherwise"}
    errors: dict[str, str] = {f"criterion.{k}": "Unknown field." for k in raw if k not in allowed}
    metric = raw.get("metric")
    if metric not in kind.metrics:
        errors["criterion.metric"] = f"{kind.key!r} produces no metric {metric!r}; it has: {', '.join(kind.metrics)}."
    comparator = raw.get("comparator")
    if comparator not in Comparator.values:
        errors["criterion.comparator"] = f"Choose one of {', '.join(Comparator.values)}."
    threshold = raw.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        errors["criterion.threshold"] = "Must be a finite number."
    if_met = raw.get("if_met")
    if if_met not in (Verdict.SUPPORTS, Verdict.REFUTES):
        errors["criterion.if_met"] = "Say what meeting the criterion means: 'supports' or 'refutes'."
    otherwise = raw.get("otherwise", OPPOSITE.get(if_met, Verdict.INCONCLUSIVE))
    if otherwise not in Verdict.values:
        errors["criterion.otherwise"] = f"Choose one of {', '.join(Verdict.values)}."
    if errors:
        raise ValidationError(errors)
    return {
        "metric": metric,
        "comparator": comparator,
        "threshold": float(threshold),
        "if_met": if_met,
        "otherwise": otherwise,
    }


def spec_hash(*, kind: Kind, params: BaseModel, seed: int) -> str:
    """Identity of a run's inputs: kind and its code version, normalized params, seed, engine version."""
    payload = {
        "kind": kind.key,
        "kind_version": kind.version,
        "engine_version": ENGINE_VERSION,
        "params": kind.normalized_params(params),
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def spec_create(
    *,
    idea: Idea,
    user,
    title: str,
    kind: str,
    params: Any = None,
    seed: int = 0,
    criterion: Any = None,
    description: str = "",
    by_operator: bool = False,
) -> ExperimentSpec:
    """Attach a runnable spec to an idea.

    Any signed-in user may add a spec; a spec with a criterion moves the idea's
    status, so only the idea's author or staff may pre-register one, and only on
    a hypothesis (an open-ended idea has no status a verdict could move).
    `by_operator`: the platform's operator attaches it from the command line (the
    catalogue's own specs), in the name of `user`, on any hypothesis.
    """
    if not user or not user.is_authenticated:
        raise PermissionDenied("Sign in to add an experiment.")
    title = clean_title(title, max_length=ExperimentSpec._meta.get_field("title").max_length)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValidationError({"seed": f"Must be an integer from 0 to {SEED_MAX}."})
    kind_obj = kind_get(kind)
    validated = params_validate(kind_obj, params)
    clean_criterion = criterion_clean(kind_obj, criterion)
    if clean_criterion and idea.kind != IdeaKind.HYPOTHESIS:
        # A verdict moves only a hypothesis' status: on anything else a criterion would promise evidence for nothing.
        raise ValidationError({"criterion": CRITERION_NEEDS_HYPOTHESIS})
    if clean_criterion and not by_operator and not user_can_edit_idea(user, idea):
        raise PermissionDenied("Only the idea's author or staff can pre-register a criterion for it.")
    return ExperimentSpec.objects.create(
        idea=idea,
        title=title,
        description=description or "",
        kind=kind_obj.key,
        params=kind_obj.normalized_params(validated),
        seed=seed,
        criterion=clean_criterion,
        author=user,
    )
