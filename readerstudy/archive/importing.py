"""Import real radiographs from a folder or a zip file into a pool."""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from readerstudy.archive import encoding
from readerstudy.archive.decoding import Refused, decode
from readerstudy.archive.encoding import pixel_sha256
from readerstudy.archive.models import Image, Pool, Source

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "DICOMDIR"}
SUPPORTED_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
ZIP_METHOD_NAMES = {9: "Deflate64", 12: "BZIP2", 14: "LZMA", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES encryption"}


@dataclass
class ImportSummary:
    pool: str
    imported: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    labelled: list[str] = field(default_factory=list)

    grey_levels: int | None = None

    def lines(self) -> list[str]:
        out = [
            f"Pool {self.pool}: {len(self.imported)} imported, "
            f"{len(self.duplicates)} duplicates, {len(self.skipped)} skipped"
            + (f"; grey-level grid {self.grey_levels} levels" if self.grey_levels else "")
        ]
        if self.labelled:
            out.append(f"  {len(self.labelled)} of the imported images got a label")
        out += [f"  duplicate  {name}: same pixels as {other}" for name, other in self.duplicates]
        out += [f"  skipped    {name}: {reason}" for name, reason in self.skipped]
        return out


def iter_sources(path: Path, max_bytes: int) -> Iterator[tuple[str, bytes | Refused]]:
    """Yield (name, file bytes) for every candidate file, in a stable order.

    A file that cannot be read (encrypted or Deflate64 zip members, a file
    deleted or made unreadable while the import runs, a symbolic link leading
    out of the imported folder) is yielded as a Refused with the reason.
    """
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or Path(info.filename).name in SKIPPED_NAMES or "__MACOSX" in info.filename:
                    continue
                yield info.filename, _read_member(archive, info, max_bytes)
    elif path.is_dir():
        root = path.resolve()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.name in SKIPPED_NAMES or file.name.startswith("."):
                continue
            name = str(file.relative_to(path))
            yield name, _read_file(file, root, max_bytes)
    elif path.is_file():
        yield path.name, _read_file(path, None, max_bytes)
    else:
        raise FileNotFoundError(f"{path} is not a file, folder or zip archive")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes | Refused:
    if info.flag_bits & 0x1:
        return Refused("encrypted zip member: export the archive without a password")
    if info.compress_type not in SUPPORTED_ZIP_METHODS:
        method = ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        return Refused(f"zip member compressed with {method}, which cannot be read: re-zip with Deflate or store it")
    if info.file_size > max_bytes:
        return Refused(f"too large: {info.file_size} bytes exceeds {max_bytes}")
    try:
        # Reading stops at the declared size, checked above; a member that lies about it fails its CRC.
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error) as error:
        return Refused(f"corrupt zip member: {error}")


def _read_file(file: Path, root: Path | None, max_bytes: int) -> bytes | Refused:
    """The file's bytes; with ``root``, a file whose real location is outside it is refused."""
    try:
        if root is not None and not file.resolve().is_relative_to(root):
            return Refused("symbolic link to a file outside the imported folder: refused")
        size = file.stat().st_size
        if size > max_bytes:
            return Refused(f"too large: {size} bytes exceeds {max_bytes}")
        with file.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since stat() is still bounded
        if len(data) > max_bytes:
            return Refused(f"too large: more than {max_bytes} bytes")
        return data
    except OSError as error:  # deleted or made unreadable while the import runs
        return Refused(f"cannot be read: {error.strerror or error}")


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

    The first import into a pool fixes its grey-level grid (encoding.py): the fewest
    levels any accepted image has. All files are decoded and measured before any is
    quantised, so the presentation-sized float squares are held in memory meanwhile.
    """
    if pool.grey_levels is None and pool.images.exists():
        raise ValueError(
            f"pool {pool} was imported before the presentation step (no grey-level grid): import the archive "
            "into a new pool, so that its real and synthetic images share one normalisation and grid"
        )
    summary = ImportSummary(pool=pool.name)
    known = dict(pool.images.filter(source=Source.REAL).values_list("pixel_sha256", "origin__filename"))
    built: dict[str, Image] = {}  # by pixel digest
    measured: list[tuple[str, object, int]] = []
    grid_fixed_here = False
    try:
        for seen, (name, data) in enumerate(iter_sources(path, settings.IMPORT_MAX_BYTES), start=1):
            if progress:
                progress(seen)
            try:
                if isinstance(data, Refused):
                    raise data
                pixels = decode(data, max_pixels=settings.IMPORT_MAX_PIXELS, min_side=pool.presentation_size)
                squared = encoding.square(pixels, pool.presentation_size)
                levels_in_window = encoding.levels_in_window(squared)
            except Refused as refusal:
                summary.skipped.append((name, str(refusal)))
                continue
            except (ValueError, TypeError, ArithmeticError, IndexError, KeyError, AttributeError, MemoryError, RuntimeError) as error:
                # A decoder bug or a hostile file no check above anticipated: one file's problem, never the import's.
                summary.skipped.append((name, f"cannot be decoded ({type(error).__name__}: {error})"))
                continue
            if problem := pool.precision_problem(squared, levels_in_window):
                summary.skipped.append((name, problem))
                continue
            measured.append((name, squared, levels_in_window))
        if pool.grey_levels is None and measured:
            grid_fixed_here = True
            pool.grey_levels = encoding.pool_grey_levels([count for *_, count in measured], pool.bit_depth, pool.presentation_size)
        summary.grey_levels = pool.grey_levels
        for name, squared, _ in measured:
            levels = encoding.present_square(squared, pool.bit_depth, pool.grey_levels, pool.presentation_version)
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
            if built:
                pool.save(update_fields=["grey_levels"])
            Image.objects.bulk_create(built.values())
    except BaseException:
        for image in built.values():
            image.delete_file()
        if grid_fixed_here:
            pool.grey_levels = None
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
