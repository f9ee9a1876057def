"""`manage.py import_ideas [PATH]`: load a catalogue file into the database."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ideas.importers import READERS, CatalogueError
from ideas.models import Idea
from ideas.services import catalogue_import, catalogue_read


def default_catalogue() -> Path:
    return Path(apps.get_app_config("ideas").path) / "fixtures" / "ai_safety_ideas.txt"


class Command(BaseCommand):
    help = (
        "Import ideas from a catalogue file: the text catalogue (ideas/fixtures/ai_safety_ideas.txt, the "
        "default) or a JSON/CSV file written by export_ideas (detected by extension or content). Ideas are "
        "matched by legacy number (by slug when a record has none) and updated in place; re-importing is "
        "safe and live votes are kept. The whole file is checked first and written in one transaction: a "
        "bad file is refused as PATH:LINE: reason and nothing is written. An export carries each idea's "
        "score as its votes, so importing an export into the SAME database adds those votes again as "
        "imported votes: exports are for moving a catalogue to another (e.g. empty) database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="the catalogue file (default: the shipped AI-safety catalogue)")
        parser.add_argument(
            "--format", dest="file_format", choices=sorted(READERS), help="the file's format (default: detected)"
        )
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--collection", metavar="NAME", help="the collection the ideas join (default: the text file's first line)"
        )
        group.add_argument("--no-collection", action="store_true", help="do not add the ideas to any collection")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="import only into a database without ideas (what `make run` does, so edits made on the site, "
            "votes and verdict-driven statuses survive a restart)",
        )

    def handle(
        self, *args, path=None, file_format=None, collection=None, no_collection=False, if_empty=False, **options
    ) -> None:
        if if_empty and Idea.objects.exists():
            self.stdout.write(f"The database already has {Idea.objects.count()} ideas; not importing (--if-empty).")
            return
        path = Path(path) if path else default_catalogue()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: cannot read the file: {error.strerror}") from None
        try:
            catalogue = catalogue_read(data=data, filename=path.name, file_format=file_format or "")
            joins = None if no_collection else (collection or catalogue.name)
            summary = catalogue_import(catalogue=catalogue, collection=joins, source=path.name)
        except CatalogueError as error:
            raise CommandError(f"{path}:{error.where}: {error.reason}") from None
        except ValidationError as error:
            raise CommandError(f"{path}: {'; '.join(error.messages)}") from None
        into = f" into collection {joins!r}" if joins else ""
        self.stdout.write(f"Imported {len(catalogue.records)} ideas from {path}{into}: {summary}.")
