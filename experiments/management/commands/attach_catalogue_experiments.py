"""Attach the shipped experiment specs to their ideas in the imported catalogue (idempotent)."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from experiments.models import ExperimentSpec
from experiments.services import spec_create
from ideas.models import Idea

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "catalogue_specs.json"
EVAL_MODEL_MARK = "$EVAL_MODEL_DIR"  # in a spec's params: the evaluation model's folder (settings.EVAL_MODEL_DIR)


def with_settings(value: Any) -> Any:
    """Params with each EVAL_MODEL_MARK replaced by the folder the settings name."""
    if value == EVAL_MODEL_MARK:
        return str(settings.EVAL_MODEL_DIR)
    if isinstance(value, dict):
        return {key: with_settings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_settings(item) for item in value]
    return value


class Command(BaseCommand):
    help = (
        "Attach the specs in experiments/fixtures/catalogue_specs.json to the catalogue ideas they name (by legacy "
        "number). A spec whose idea already has one with the same title is left alone. '$EVAL_MODEL_DIR' in params "
        "stands for the evaluation model's folder (settings.EVAL_MODEL_DIR)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", default=str(DEFAULT_FILE))
        parser.add_argument("--user", default="demo", help="The author of the specs (an existing username).")
        parser.add_argument(
            "--if-user-exists", action="store_true", help="Without that user, say so and attach nothing (make run)."
        )

    @transaction.atomic
    def handle(self, *args, path: str, user: str, if_user_exists: bool, **options) -> None:
        author = get_user_model().objects.filter(username=user).first()
        if author is None and if_user_exists:
            self.stdout.write(f"No user {user!r}: catalogue experiments not attached (run again with --user NAME).")
            return
        if author is None:
            raise CommandError(f"No user {user!r}; create one first (make run creates 'demo').")
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        created = skipped = 0
        for number, entry in enumerate(entries, start=1):
            idea = Idea.objects.filter(legacy_number=entry["legacy_number"]).first()
            if idea is None:
                raise CommandError(f"{path}: entry {number}: no idea #{entry['legacy_number']}; import the catalogue.")
            if ExperimentSpec.objects.filter(idea=idea, title=entry["title"]).exists():
                skipped += 1
                continue
            try:
                spec_create(
                    idea=idea,
                    user=author,
                    title=entry["title"],
                    description=entry.get("description", ""),
                    kind=entry["kind"],
                    params=with_settings(entry.get("params", {})),
                    seed=entry.get("seed", 0),
                    criterion=entry.get("criterion"),
                    by_operator=True,  # the catalogue's criteria are the project's, pre-registered with it
                )
            except ValidationError as exc:
                raise CommandError(f"{path}: entry {number}: {exc.message_dict}") from None
            created += 1
        self.stdout.write(f"Catalogue experiments: attached {created}, already there {skipped}.")
