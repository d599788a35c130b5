"""Background jobs of the archive: importing an uploaded zip or set of files into a pool."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from readerstudy.archive.importing import count_sources, import_images, read_labels
from readerstudy.archive.models import Pool
from readerstudy.jobs.engine import JobError, handler
from readerstudy.jobs.models import Job


def staging_folder(name: str) -> Path:
    """An upload's staging folder by its name, refusing anything outside UPLOAD_STAGING_DIR."""
    root = Path(settings.UPLOAD_STAGING_DIR).resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise JobError("the upload's staging folder is not where uploads are kept")
    return folder


@handler("import_upload")
def import_upload(job: Job) -> None:
    """Import a staged upload into a pool (created here when new), then delete the staged files.

    params: ``staging`` (folder name under UPLOAD_STAGING_DIR holding ``files/`` or ``archive.zip``,
    and ``labels.csv`` when given), and ``pool_id`` or ``new_pool`` {name, presentation_size, bit_depth}.
    The summary goes to ``job.result``. A new pool into which nothing could be imported is not kept.
    """
    params = job.params
    folder = staging_folder(params["staging"])
    try:
        source = folder / "archive.zip" if (folder / "archive.zip").exists() else folder / "files"
        try:
            labels = read_labels(folder / "labels.csv") if (folder / "labels.csv").exists() else None
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise JobError(f"cannot read the labels file: {error}") from error
        created = False
        if params.get("pool_id"):
            pool = Pool.objects.get(pk=params["pool_id"])
        else:
            spec = params["new_pool"]
            pool, created = Pool.objects.get_or_create(name=spec["name"], defaults=spec)
        total = count_sources(source)
        job.report_progress(0, total, f"reading {total} files")
        try:
            summary = import_images(source, pool, labels, progress=lambda seen: job.report_progress(seen))
        except BaseException:
            if created:
                pool.delete()  # nothing half-written: not even the new, empty pool
            raise
        job.report_progress(total, total, "")
        kept = bool(summary.imported) or not created
        if not kept:
            pool.delete()
        job.result = {
            "pool_id": pool.pk if kept else None,
            "pool": pool.name,
            "pool_kept": kept,
            "imported": len(summary.imported),
            "labelled": len(summary.labelled),
            "labels_given": len(labels or {}),
            "unmatched_labels": sorted(set(labels or {}) - {name for name in summary.imported} - {d for d, _ in summary.duplicates}
                                       - {name for name, _ in summary.skipped}),
            "duplicates": [{"file": name, "kept": other} for name, other in summary.duplicates],
            "skipped": [{"file": name, "reason": reason} for name, reason in summary.skipped],
        }
        Job.objects.filter(pk=job.pk).update(result=job.result)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
