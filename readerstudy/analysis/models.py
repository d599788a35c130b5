from __future__ import annotations

from django.db import models

from readerstudy.studies.models import Study


class MachineReading(models.Model):
    """The machine reader's result on one study's scored images (readerstudy/analysis/machine_reader.py).

    Keyed by `images_sha256`, the hash of what was read: when the study's images change
    the stored reading is shown as stale, never as the current one."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="machine_reading")
    images_sha256 = models.CharField(max_length=64)
    figures = models.JSONField(help_text="generator.machine_reader figures, full precision")
    case_scores = models.JSONField(help_text="case number -> held-out P(synthetic) of its synthetic image (mixed: its image)")
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"machine reading of {self.study}"
