"""Every registered experiment kind. Importing this package registers them all."""

from experiments.engine.kinds import (  # noqa: F401
    attention_depth_comparison,
    checkpoint_pca,
    composition_scores,
    head_ablation,
    head_detection,
    smoke,
    train_transformer,
)
