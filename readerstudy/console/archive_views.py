"""The archive in the browser: pools, uploads imported by a background job, thumbnail galleries.

Console pages are for coordinators only; readers never reach them, so a gallery may show file
names, labels and thumbnails (which would be a blinding leak on any reader's page).
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET
from PIL import Image as PILImage

from readerstudy.archive.models import Image, Pool, Source
from readerstudy.console.permissions import coordinator_required
from readerstudy.jobs.engine import enqueue, resume_orphans
from readerstudy.jobs.models import Job

THUMBNAIL_SIZE = 160
GALLERY_PAGE = 60


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


class UploadForm(forms.Form):
    pool = forms.ModelChoiceField(
        Pool.objects.order_by("name"), required=False, empty_label="— a new pool —",
        help_text="add to an existing pool, or leave this and name a new one below",
    )
    new_pool_name = forms.SlugField(required=False, label="New pool name", help_text="letters, digits, - and _")
    presentation_size = forms.IntegerField(
        initial=256, min_value=16, max_value=4096, required=False,
        help_text="new pools: every image is centre-cropped to a square and resized to this many pixels",
    )
    bit_depth = forms.TypedChoiceField(
        choices=[(16, "16-bit (DICOM and 16-bit PNG/TIFF)"), (8, "8-bit (most JPEG and PNG exports)")], coerce=int, initial=16,
        required=False, help_text="new pools: an 8-bit archive needs an 8-bit pool, or its grey-level steps would give it away",
    )
    files = MultipleFileField(help_text="one zip file, or a set of DICOM, PNG, JPEG or TIFF files")
    labels = forms.FileField(required=False, help_text="optional CSV with the columns filename,label (e.g. a Kellgren–Lawrence grade)")

    def clean_files(self) -> list:
        files = self.cleaned_data["files"]
        names = [Path(f.name).name for f in files]
        if any(name.lower().endswith(".zip") for name in names) and len(files) > 1:
            raise forms.ValidationError("upload one zip file on its own, or a set of image files without a zip")
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise forms.ValidationError(f"two files have the same name: {', '.join(twice)}")
        return files

    def clean(self) -> dict:
        data = super().clean()
        pool, name = data.get("pool"), data.get("new_pool_name")
        if pool and name:
            self.add_error("new_pool_name", "choose an existing pool or name a new one, not both")
        elif not pool and not name:
            self.add_error("new_pool_name", "name the new pool (or choose an existing one above)")
        elif name and Pool.objects.filter(name=name).exists():
            self.add_error("new_pool_name", f"a pool named {name} exists already: choose it above to add to it")
        if not pool and name and not data.get("presentation_size"):
            self.add_error("presentation_size", "a new pool needs its presentation size")
        return data

    def stage(self) -> str:
        """Write the upload into a fresh staging folder; returns its name for the import job."""
        name = uuid.uuid4().hex
        folder = Path(settings.UPLOAD_STAGING_DIR) / name
        files = self.cleaned_data["files"]
        if len(files) == 1 and files[0].name.lower().endswith(".zip"):
            _write(files[0], folder / "archive.zip")
        else:
            for upload in files:
                _write(upload, folder / "files" / Path(upload.name).name)
        if self.cleaned_data.get("labels"):
            _write(self.cleaned_data["labels"], folder / "labels.csv")
        return name

    def job_params(self) -> dict:
        data = self.cleaned_data
        if data.get("pool"):
            return {"pool_id": data["pool"].pk}
        return {"new_pool": {"name": data["new_pool_name"], "presentation_size": data["presentation_size"],
                             "bit_depth": data.get("bit_depth") or 16}}


def _write(upload, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)


@coordinator_required
def archive(request: HttpRequest) -> HttpResponse:
    """Pools with their image counts, the upload form, and recent imports."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = enqueue("import_upload", user=request.user, staging=form.stage(), **form.job_params())
        return redirect("console:import_job", job.pk)
    pools = Pool.objects.order_by("name").annotate(
        real=Count("images", filter=Q(images__source=Source.REAL)),
        labelled=Count("images", filter=Q(images__source=Source.REAL, images__origin__has_key="label")),
    )
    imports = Job.objects.filter(kind="import_upload")[:10]
    return render(request, "console/archive/archive.html", {"form": form, "pools": pools, "imports": imports})


@coordinator_required
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id, kind="import_upload")
    return render(request, "console/archive/import_job.html", {"job": job, "result": job.result})


@coordinator_required
@require_GET
def job_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job's progress for the console's progress bars (static/js/job_progress.js polls it)."""
    resume_orphans()
    job = get_object_or_404(Job, pk=job_id)
    return JsonResponse({
        "status": job.status, "done": job.done, "total": job.total, "percent": job.percent,
        "message": job.message, "active": job.is_active,
    })


@coordinator_required
def gallery(request: HttpRequest, pool_id: int) -> HttpResponse:
    """A pool's real images as thumbnails with their file names and labels, a page at a time."""
    pool = get_object_or_404(Pool, pk=pool_id)
    images = pool.real_images().order_by("origin__filename", "pk")
    page = Paginator(images, GALLERY_PAGE).get_page(request.GET.get("page"))
    return render(request, "console/archive/gallery.html", {"pool": pool, "page": page, "count": images.count()})


@coordinator_required
@require_GET
def thumbnail(request: HttpRequest, token: str) -> HttpResponse:
    """A small 8-bit PNG of a presentation image (console only: readers get the full image from /img/)."""
    image = get_object_or_404(Image, token=token)
    size = 256 if request.GET.get("size") == "256" else THUMBNAIL_SIZE
    return HttpResponse(thumbnail_png(image.read_levels(), image.bit_depth, size), content_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})


def thumbnail_png(levels: np.ndarray, bit_depth: int, size: int = THUMBNAIL_SIZE) -> bytes:
    eight = (levels >> 8).astype(np.uint8) if bit_depth == 16 else levels.astype(np.uint8)
    picture = PILImage.fromarray(eight)
    picture.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
