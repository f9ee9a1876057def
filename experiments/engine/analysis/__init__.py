"""Interpretability measurements shared by the kinds: head scores, composition, ablation, trajectory change points."""
