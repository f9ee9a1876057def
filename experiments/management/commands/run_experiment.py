"""Run a spec in this process with a progress bar: for a GPU box without a broker."""

import threading

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from experiments.models import ExperimentRun, ExperimentSpec, RunStatus
from experiments.services import run_execute, run_trigger
from experiments.torch_threads import torch_threads_apply, torch_threads_for


class Command(BaseCommand):
    help = (
        "Run an experiment spec in this process (no broker, no worker), showing progress. The run is recorded "
        "like any other; an identical spec that already succeeded is reported from cache unless --force."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("spec_id", type=int)
        parser.add_argument("--force", action="store_true", help="Run again even if an identical run succeeded.")

    def handle(self, *args, spec_id: int, force: bool, **options) -> None:
        spec = ExperimentSpec.objects.filter(pk=spec_id).first()
        if spec is None:
            raise CommandError(f"There is no experiment spec {spec_id}.")
        try:
            trigger = run_trigger(spec=spec, user=None, force=force, dispatch=False)
        except ValidationError as exc:
            raise CommandError(f"Spec {spec_id} is not runnable: {exc.message_dict}") from None
        run = trigger.run
        if trigger.cached:
            self.stdout.write(f"Spec {spec_id} already succeeded as run {run.pk} (use --force to replicate).")
        elif not trigger.created:
            raise CommandError(f"Run {run.pk} of this spec is already {run.status}; wait for it or cancel it.")
        else:
            self._execute_with_bar(run.pk, spec.title)
            run.refresh_from_db()
        self._report(run)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run {run.pk} {run.status}: {run.error.strip().splitlines()[-1:] or ''}")

    def _execute_with_bar(self, run_id: int, title: str) -> None:
        # The run executes in this process: it gets the CPUs a one-run worker would (or WORKER_TORCH_THREADS).
        torch_threads_apply(torch_threads_for(concurrency=1, override=settings.WORKER_TORCH_THREADS))
        worker = threading.Thread(target=run_execute, kwargs={"run_id": run_id, "worker": "run_experiment"})
        worker.start()
        with tqdm(total=100, desc=title[:40], unit="%", file=self.stderr._out) as bar:
            while worker.is_alive():
                worker.join(timeout=0.5)
                run = ExperimentRun.objects.only("progress", "progress_message").get(pk=run_id)
                bar.n = round(run.progress * 100)
                bar.set_postfix_str(run.progress_message)
                bar.refresh()

    def _report(self, run: ExperimentRun) -> None:
        partial = ", partial" if run.partial else ""
        self.stdout.write(f"Run {run.pk}: {run.status}{partial} (attempts {run.attempts}, device {run.device or '-'})")
        if run.verdict:
            self.stdout.write(f"  verdict: {run.verdict}")
        if run.findings:
            self.stdout.write("Findings:")
            for finding in run.findings:
                self.stdout.write(f"  - {finding}")
        self.stdout.write("Metrics:")
        for name, value in sorted(run.metrics.items()):
            self.stdout.write(f"  {name} = {value}")
