"""Settings of the bare view's server in benchmarks/api.py: the project's own, with only the URLconf swapped."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bare_app"
