"""Synthetic sources in the browser: register a GAN checkpoint, an ONNX generator or a CT volume,
by upload or by a path inside CHECKPOINT_DIRS, and see a grid of its samples beside real images.

Registration fingerprints the file there and then (``Generator.full_clean()``), so a broken or
wrong file is refused with its reason in the form. The same file registered a second time is
flagged and needs a deliberate confirmation (for instance to pair it with another privacy screen).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from readerstudy.archive import encoding
from readerstudy.archive.models import Pool
from readerstudy.console.archive_views import MultipleFileField, _write, thumbnail_png
from readerstudy.console.jobs import SAMPLE_COUNT, sample_name
from readerstudy.console.permissions import coordinator_required
from readerstudy.jobs.engine import enqueue
from readerstudy.jobs.models import Job
from readerstudy.studies.models import Generator

REAL_BESIDE_SAMPLES = 8
GRID_SIZE = 256


def inside_checkpoint_dirs(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(folder).resolve()) for folder in settings.CHECKPOINT_DIRS)


class RegisterForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="names the source in exports and the report, e.g. knee-stylegan2")
    kind = forms.ChoiceField(choices=Generator.Kind.choices, initial=Generator.Kind.GAN)
    upload = forms.FileField(
        required=False, label="Upload the file",
        help_text="a .safetensors checkpoint, an .onnx generator, or a CT volume (.nii or .nii.gz)",
    )
    path = forms.CharField(
        required=False, max_length=500, label="…or its path on the server",
        help_text="inside one of the checkpoint folders (CHECKPOINT_DIRS); relative paths are looked up there. "
                  "A CT as a DICOM series is given as its folder here.",
    )
    privacy_upload = MultipleFileField(
        required=False, label="Privacy screen: upload its two files",
        help_text="the .privacy.safetensors file and the .privacy.json beside it (python -m generator privacy-screen)",
    )
    privacy_path = forms.CharField(required=False, max_length=500, label="…or its path on the server")
    pool = forms.ModelChoiceField(
        Pool.objects.order_by("name"), required=False, empty_label="— no samples now —",
        help_text="samples are made at this pool's presentation size and shown beside its real images",
    )
    register_again = forms.BooleanField(
        required=False, label="Register it again although the same file is registered already",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.folder: Path | None = None
        first_pool = Pool.objects.order_by("name").first()
        if first_pool and not self.is_bound:
            self.initial["pool"] = first_pool.pk

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Generator.objects.filter(name=name).exists():
            raise ValidationError(f"a source named {name} exists already; sources are never changed, register it under a new name")
        return name

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("upload")) == bool(data.get("path")):
            self.add_error("upload", "upload the file or give its path (one of the two)")
        if data.get("privacy_upload") and data.get("privacy_path"):
            self.add_error("privacy_upload", "upload the privacy screen or give its path, not both")
        for field in ("path", "privacy_path"):
            if data.get(field) and not self._in_dirs(data[field]):
                self.add_error(field, "this path is not inside a checkpoint folder (CHECKPOINT_DIRS)")
        return data

    @staticmethod
    def _in_dirs(name: str) -> bool:
        try:
            return inside_checkpoint_dirs(Generator.resolve(name))
        except FileNotFoundError:
            return True  # full_clean says it is missing, with the folders it looked in

    def build(self) -> Generator | None:
        """The fingerprinted, unsaved generator, or None with the reasons on the form's fields."""
        data = self.cleaned_data
        relative = lambda path: str(path.relative_to(settings.UPLOADED_CHECKPOINT_DIR))  # noqa: E731
        path, screen = data.get("path", ""), data.get("privacy_path", "")
        if data.get("upload") or data.get("privacy_upload"):
            self.folder = Path(settings.UPLOADED_CHECKPOINT_DIR) / uuid.uuid4().hex
            if upload := data.get("upload"):
                target = self.folder / Path(upload.name).name
                _write(upload, target)
                path = relative(target)
            for item in data.get("privacy_upload") or []:
                target = self.folder / Path(item.name).name
                _write(item, target)
                if target.name.endswith(".safetensors"):
                    screen = relative(target)
            if data.get("privacy_upload") and not screen:
                self.add_error("privacy_upload", "no .safetensors file among the privacy screen's files")
                return self.discard()
        generator = Generator(name=data["name"], kind=data["kind"], path=path, privacy_screen=screen)
        try:
            generator.full_clean()
        except ValidationError as error:
            field = "upload" if data.get("upload") else "path"
            for message in error.messages:
                if "privacy" in message.lower() and (data.get("privacy_upload") or data.get("privacy_path")):
                    self.add_error("privacy_upload" if data.get("privacy_upload") else "privacy_path", message)
                else:
                    self.add_error(field, message)
            return self.discard()
        same = Generator.objects.filter(sha256=generator.sha256).order_by("created_at").first()
        if same and not data.get("register_again"):
            self.add_error(
                "upload" if data.get("upload") else "path",
                f"this file is registered already, as {same.name} ({same.get_kind_display()}, "
                f"{same.created_at:%Y-%m-%d}); tick the box below to register it again",
            )
            return self.discard()
        return generator

    def discard(self) -> None:
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        return None


class SamplesForm(forms.Form):
    pool = forms.ModelChoiceField(Pool.objects.order_by("name"), empty_label=None, label="Beside real images of pool")


@coordinator_required
def sources(request: HttpRequest) -> HttpResponse:
    generators = Generator.objects.order_by("name")
    repeated = {
        row["sha256"] for row in Generator.objects.values("sha256").annotate(n=Count("pk")).filter(n__gt=1)
    }
    return render(request, "console/sources/sources.html", {"generators": generators, "repeated": repeated})


@coordinator_required
def register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and (generator := form.build()) is not None:
        generator.save()
        if pool := form.cleaned_data.get("pool"):
            enqueue("generator_samples", user=request.user, generator_id=generator.pk, pool_id=pool.pk, count=SAMPLE_COUNT)
        return redirect("console:source", generator.pk)
    return render(request, "console/sources/register.html", {"form": form})


@coordinator_required
def source(request: HttpRequest, generator_id: int) -> HttpResponse:
    """A source, its registration record, and its latest sample grid beside real images of the pool."""
    generator = get_object_or_404(Generator, pk=generator_id)
    form = SamplesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        enqueue("generator_samples", user=request.user, generator_id=generator.pk, pool_id=form.cleaned_data["pool"].pk,
                count=SAMPLE_COUNT)
        return redirect("console:source", generator.pk)
    job = Job.objects.filter(kind="generator_samples", params__generator_id=generator.pk).first()
    real = []
    if job and job.result.get("pool_id"):
        pool = Pool.objects.filter(pk=job.result["pool_id"]).first()
        real = list(pool.real_images().order_by("pixel_sha256")[:REAL_BESIDE_SAMPLES]) if pool else []
    twins = Generator.objects.filter(sha256=generator.sha256).exclude(pk=generator.pk).order_by("name")
    context = {"generator": generator, "job": job, "real": real, "form": form, "twins": twins, "grid_size": GRID_SIZE}
    return render(request, "console/sources/source.html", context)


@coordinator_required
@require_GET
def sample(request: HttpRequest, generator_id: int, job_id: int, number: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id, kind="generator_samples", params__generator_id=generator_id)
    name = sample_name(job.pk, number)
    if not storages["default"].exists(name):
        raise Http404("No such sample")
    with storages["default"].open(name, "rb") as handle:
        levels = encoding.decode_png(handle.read())
    bit_depth = 16 if levels.dtype.itemsize == 2 else 8
    return HttpResponse(thumbnail_png(levels, bit_depth, GRID_SIZE), content_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})
