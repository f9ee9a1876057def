"""Every registered experiment kind. Importing this package registers them all."""

from experiments.engine.kinds import smoke  # noqa: F401
