"""`manage.py export_ideas --format json|csv [--output FILE]`: write the catalogue out."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ideas.services import catalogue_export
from ideas.services.catalogue import EXPORT_FORMATS


class Command(BaseCommand):
    help = (
        "Export every idea (legacy number, slug, title, kind, status, votes = current score, body, tags, "
        "collections, outgoing links) as JSON or CSV, to stdout or --output FILE. import_ideas reads the "
        "result: importing it into an empty database reproduces the catalogue. Importing it into the same "
        "database adds the scores again as imported votes, so use exports to move a catalogue elsewhere."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="file_format", choices=EXPORT_FORMATS, default="json")
        parser.add_argument("--output", metavar="FILE", help="write here instead of to stdout")

    def handle(self, *args, file_format="json", output=None, **options) -> None:
        try:
            text = catalogue_export(file_format=file_format)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8", newline="")
        except OSError as error:
            raise CommandError(f"{output}: cannot write the file: {error.strerror}") from None
        self.stdout.write(f"Exported the catalogue as {file_format} to {output}.")
