"""Writes of the run platform: specs, runs and their lifecycle, evidence, uploaded datasets."""

from experiments.services.datasets import dataset_delete, dataset_upload, user_can_delete_dataset
from experiments.services.evidence import idea_status_follow_verdicts, verdict_for
from experiments.services.runs import (
    ReapReport,
    TriggerResult,
    run_can_cancel,
    run_cancel,
    run_execute,
    run_time_limit_exceeded,
    run_trigger,
    run_worker_lost,
    runs_reap,
)
from experiments.services.specs import criterion_clean, kind_get, params_validate, spec_create, spec_hash

__all__ = [
    "ReapReport",
    "TriggerResult",
    "criterion_clean",
    "dataset_delete",
    "dataset_upload",
    "idea_status_follow_verdicts",
    "kind_get",
    "params_validate",
    "run_can_cancel",
    "run_cancel",
    "run_execute",
    "run_time_limit_exceeded",
    "run_trigger",
    "run_worker_lost",
    "runs_reap",
    "spec_create",
    "spec_hash",
    "user_can_delete_dataset",
    "verdict_for",
]
