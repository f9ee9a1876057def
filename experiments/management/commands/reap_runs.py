"""Re-queue or fail runs whose worker stopped sending heartbeats; resend lost queued runs."""

from django.core.management.base import BaseCommand

from experiments.services import runs_reap


class Command(BaseCommand):
    help = (
        "Mark runs whose heartbeat is stale as failed (or re-queue them while attempts remain) and resend "
        "queued runs whose task message was lost. Workers also do this every RUN_REAP_INTERVAL_SECONDS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--stale-after", type=float, default=None, help="Seconds without a heartbeat.")
        parser.add_argument("--resend-after", type=float, default=None, help="Seconds a queued run may wait.")

    def handle(self, *args, stale_after, resend_after, **options) -> None:
        report = runs_reap(stale_after=stale_after, resend_after=resend_after)
        self.stdout.write(
            f"requeued {len(report.requeued)} {report.requeued}, failed {len(report.failed)} {report.failed}, "
            f"resent {len(report.resent)} {report.resent}"
        )
