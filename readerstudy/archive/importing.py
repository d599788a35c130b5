"""Import real radiographs from a folder or a zip file into a pool."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from readerstudy.archive.decoding import Refused, decode
from readerstudy.archive.encoding import pixel_sha256
from readerstudy.archive.models import Image, Pool, Source

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "DICOMDIR"}


@dataclass
class ImportSummary:
    pool: str
    imported: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    labelled: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"Pool {self.pool}: {len(self.imported)} imported, "
            f"{len(self.duplicates)} duplicates, {len(self.skipped)} skipped"
        ]
        if self.labelled:
            out.append(f"  {len(self.labelled)} of the imported images got a label")
        out += [f"  duplicate  {name}: same pixels as {other}" for name, other in self.duplicates]
        out += [f"  skipped    {name}: {reason}" for name, reason in self.skipped]
        return out


def iter_sources(path: Path, max_bytes: int) -> Iterator[tuple[str, bytes | Refused]]:
    """Yield (name, file bytes) for every candidate file, in a stable order."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or Path(info.filename).name in SKIPPED_NAMES or "__MACOSX" in info.filename:
                    continue
                if info.file_size > max_bytes:
                    yield info.filename, Refused(f"too large: {info.file_size} bytes exceeds {max_bytes}")
                    continue
                try:
                    yield info.filename, archive.read(info)
                except (zipfile.BadZipFile, OSError, EOFError) as error:
                    yield info.filename, Refused(f"corrupt zip member: {error}")
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.name in SKIPPED_NAMES or file.name.startswith("."):
                continue
            name = str(file.relative_to(path))
            size = file.stat().st_size
            if size > max_bytes:
                yield name, Refused(f"too large: {size} bytes exceeds {max_bytes}")
                continue
            yield name, file.read_bytes()
    elif path.is_file():
        if path.stat().st_size > max_bytes:
            yield path.name, Refused(f"too large: {path.stat().st_size} bytes exceeds {max_bytes}")
        else:
            yield path.name, path.read_bytes()
    else:
        raise FileNotFoundError(f"{path} is not a file, folder or zip archive")


def read_labels(path: Path) -> dict[str, str]:
    """A labels file: CSV with columns ``filename,label`` (filename as it appears under the import path)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: a labels file needs the columns filename,label")
        return {row["filename"].strip(): row["label"].strip() for row in reader if row["filename"].strip()}


def import_images(
    path: Path, pool: Pool, labels: dict[str, str] | None = None, progress: Callable[[int], None] | None = None
) -> ImportSummary:
    """Import every usable image under ``path`` into ``pool``.

    Unusable files are skipped with a reason. Rows are created in one
    transaction at the end: an import that fails part-way (a crash, a full
    disk, a database error) adds no row at all, and the files it had already
    written are removed. Of two files with the same pixels in one import the
    labelled one is kept. ``progress`` is called with the count of files seen
    so far (a background import reports it to the coordinator's progress bar).
    """
    summary = ImportSummary(pool=pool.name)
    known = dict(pool.images.filter(source=Source.REAL).values_list("pixel_sha256", "origin__filename"))
    built: dict[str, Image] = {}  # by pixel digest
    try:
        for seen, (name, data) in enumerate(iter_sources(path, settings.IMPORT_MAX_BYTES), start=1):
            if progress:
                progress(seen)
            try:
                if isinstance(data, Refused):
                    raise data
                pixels = decode(data, max_pixels=settings.IMPORT_MAX_PIXELS, min_side=pool.presentation_size)
            except Refused as refusal:
                summary.skipped.append((name, str(refusal)))
                continue
            levels = pool.present(pixels)
            if problem := pool.precision_problem(levels):
                summary.skipped.append((name, problem))
                continue
            digest = pixel_sha256(levels)
            label = labels.get(name) if labels else None
            kept = built.get(digest)
            if kept is not None and label is not None and "label" not in kept.origin:
                # Prefer the labelled copy: the unlabelled one becomes the duplicate.
                kept.delete_file()
                del built[digest]
                replaced = known[digest]
                summary.imported.remove(replaced)
                summary.duplicates = [(dup, name if of == replaced else of) for dup, of in summary.duplicates]
                summary.duplicates.append((replaced, name))
            elif digest in known:
                summary.duplicates.append((name, known[digest]))
                continue
            origin = {"filename": name}
            if label is not None:
                origin["label"] = label
                summary.labelled.append(name)
            built[digest] = Image.build(pool, levels, Source.REAL, origin=origin)
            known[digest] = name
            summary.imported.append(name)
        with transaction.atomic():
            Image.objects.bulk_create(built.values())
    except BaseException:
        for image in built.values():
            image.delete_file()
        raise
    return summary


def count_sources(path: Path) -> int:
    """How many candidate files an import of ``path`` will look at (for a progress bar's total)."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return sum(
                1 for info in archive.infolist()
                if not info.is_dir() and Path(info.filename).name not in SKIPPED_NAMES and "__MACOSX" not in info.filename
            )
    if path.is_dir():
        return sum(1 for p in path.rglob("*") if p.is_file() and p.name not in SKIPPED_NAMES and not p.name.startswith("."))
    return 1
