import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from readerstudy.archive.importing import import_images, read_labels
from readerstudy.archive.models import Pool

MIN_SIZE, MAX_SIZE = 16, 8192  # below: nothing to read; above: a single image of gigabytes


class Command(BaseCommand):
    help = "Import real radiographs (DICOM, PNG, JPEG, TIFF) from a folder or zip file into a pool."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--pool", required=True, help="pool name; created if it does not exist")
        parser.add_argument("--size", type=int, help="presentation size in pixels (new pools; default 256)")
        parser.add_argument("--labels", type=Path, help="CSV with columns filename,label (e.g. a Kellgren-Lawrence grade)")
        parser.add_argument(
            "--bit-depth", type=int, choices=[8, 16],
            help="presentation bit depth (new pools; default 16; 8 for 8-bit archives such as most JPEG and PNG exports)",
        )

    def handle(self, path: Path, pool: str, size: int | None, bit_depth: int | None, labels: Path | None, **options):
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            validate_slug(pool)
        except ValidationError:
            raise CommandError(f"pool name {pool!r}: use letters, digits, '-' and '_' only") from None
        if len(pool) > Pool._meta.get_field("name").max_length:
            raise CommandError(f"pool name {pool!r} is longer than {Pool._meta.get_field('name').max_length} characters")
        if size is not None and not MIN_SIZE <= size <= MAX_SIZE:
            raise CommandError(f"--size {size}: the presentation size must be {MIN_SIZE} to {MAX_SIZE} pixels")
        defaults = {k: v for k, v in {"presentation_size": size, "bit_depth": bit_depth}.items() if v}
        target, created = Pool.objects.get_or_create(name=pool, defaults=defaults)
        if not created and defaults and any(getattr(target, k) != v for k, v in defaults.items()):
            raise CommandError(
                f"pool {pool} already exists with size {target.presentation_size} and "
                f"{target.bit_depth}-bit images; its images must all share one presentation"
            )
        try:
            label_map = read_labels(labels) if labels else None
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read the labels file: {error}") from error
        try:
            summary = import_images(path, target, label_map)
        except ValueError as error:
            if created:
                target.delete()
            raise CommandError(str(error)) from error
        except (OSError, zipfile.BadZipFile) as error:
            # Nothing was added (import_images removes what it wrote); a pool made for this run goes too.
            if created:
                target.delete()
            raise CommandError(f"import stopped, nothing was added: {error}") from error
        except BaseException:
            if created:
                target.delete()
            raise
        for line in summary.lines():
            self.stdout.write(line)
        if created and not summary.imported:
            target.delete()  # so that running again with other options is not refused by an empty pool
            self.stdout.write(f"Pool {pool} was not kept: nothing could be imported into it.")
