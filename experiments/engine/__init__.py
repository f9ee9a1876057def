"""The experiment engine: plain Python and torch, never Django.

A kind (one module in `kinds/`) declares its parameters, metrics, device and
time limits and runs through a `RunContext` that carries progress, step
metrics, artifacts, cancellation and seeds. The same kind runs in a test, a
notebook, `manage.py run_experiment` and a Celery worker.
"""

ENGINE_VERSION = "3"
