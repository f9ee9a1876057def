"""Every experiment kind, listed once.

`register_kinds()` puts them in the registry; the experiments app calls it at start-up
(`ExperimentsConfig.ready`), and code without Django (engine tests, notebooks) calls it itself.
Importing a kind module registers nothing.
"""

from __future__ import annotations

from functools import cache

from experiments.engine.kinds import (
    activation_inversion,
    attention_depth_comparison,
    attribution_patching,
    causal_tracing,
    checkpoint_pca,
    composition_scores,
    finetune_comparison,
    framing_conformity,
    grokking_modular_addition,
    head_ablation,
    head_detection,
    ioi,
    ioi_replication,
    model_diff,
    persona_truthfulness,
    refusal_rate,
    smoke,
    train_transformer,
)
from experiments.engine.registry import Registry, kind_from_module, registry

KIND_MODULES = (
    smoke,
    train_transformer,
    head_detection,
    composition_scores,
    head_ablation,
    checkpoint_pca,
    attention_depth_comparison,
    grokking_modular_addition,
    model_diff,
    finetune_comparison,
    activation_inversion,
    causal_tracing,
    attribution_patching,
    ioi,
    ioi_replication,
    persona_truthfulness,
    framing_conformity,
    refusal_rate,
)


@cache
def register_kinds() -> Registry:
    """Register every kind of KIND_MODULES, once however often it is called; returns the registry."""
    for module in KIND_MODULES:
        registry.register(kind_from_module(module))
    return registry
