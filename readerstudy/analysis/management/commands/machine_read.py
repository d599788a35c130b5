"""python manage.py machine_read STUDY: the machine reader on a study's images, stored with the study."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from readerstudy.analysis.machine_reader import compute_machine_reading
from readerstudy.studies.models import Study


class Command(BaseCommand):
    help = "Score a prepared study's real and synthetic images with the machine reader and store the result."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or name")
        parser.add_argument("--steps", type=int, default=300, help="training steps of each CNN (default 300)")
        parser.add_argument("--statistics-only", action="store_true", help="skip the CNNs (seconds, not minutes)")

    def handle(self, *args, study: str, steps: int, statistics_only: bool, **options):
        from generator.machine_reader import summary_line

        try:
            found = Study.from_ref(study)
        except Study.DoesNotExist:
            raise CommandError(f"no study {study!r}") from None
        try:
            reading = compute_machine_reading(found, steps=steps, learned=not statistics_only)
        except ValueError as problem:
            raise CommandError(str(problem)) from None
        self.stdout.write(f"{found}: {summary_line(reading.figures)}")
