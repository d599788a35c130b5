import io
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from readerstudy.analysis.export import rows_for_study
from readerstudy.analysis.tidy import write_csv
from readerstudy.studies.models import Study


class Command(BaseCommand):
    help = "Export a study's answers as tidy CSV, one row per answer (see README for the columns)."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or name")
        parser.add_argument("--format", choices=["csv"], default="csv")
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")

    def handle(self, study: str, output: Path | None, **options):
        try:
            found = Study.from_ref(study)
        except Study.DoesNotExist:
            raise CommandError(f"no study {study!r}") from None
        rows = rows_for_study(found)
        if output:
            with output.open("w", newline="") as handle:
                write_csv(rows, handle)
            self.stderr.write(f"{len(rows)} answers written to {output}")
        else:
            buffer = io.StringIO()
            write_csv(rows, buffer)
            self.stdout.write(buffer.getvalue(), ending="")
