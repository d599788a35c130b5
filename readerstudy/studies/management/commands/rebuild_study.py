from django.core.management.base import BaseCommand, CommandError

from readerstudy.studies.models import Study
from readerstudy.studies.rebuild import rebuild_differences


class Command(BaseCommand):
    help = "Rebuild a study from its stored seeds and confirm it reproduces the same cases, orders, sides and pixels."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or name")
        parser.add_argument("--skip-pixels", action="store_true", help="do not resample synthetic images")

    def handle(self, study: str, skip_pixels: bool, **options):
        try:
            found = Study.from_ref(study)
        except Study.DoesNotExist:
            raise CommandError(f"no study {study!r}") from None
        differences = rebuild_differences(found, check_pixels=not skip_pixels)
        if differences:
            raise CommandError("the rebuilt study differs:\n" + "\n".join(differences))
        self.stdout.write(self.style.SUCCESS("Rebuilt from its seeds: cases, orders, sides and synthetic pixels are identical."))
