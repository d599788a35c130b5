"""Append-only records of a study: its audit log and its exclusions.

Nothing here is ever changed or deleted (except with the study itself): a record that
turns out wrong is answered by a new record, so the trail stays whole.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} records are append-only")

    def delete(self):
        raise TypeError(f"{self.model.__name__} records are append-only")


class AppendOnly(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError(f"{type(self).__name__} records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} records are append-only")


class AuditEntry(AppendOnly):
    """One change of a study's state or settings: who, what, before → after, when."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="audit_log")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=40)
    field = models.CharField(max_length=60, blank=True)
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        change = f"{self.before} → {self.after}" if self.before and self.after else self.after or self.before
        return f"{self.at:%Y-%m-%d %H:%M} {self.by or 'system'}: {self.action} {self.field} {change}".strip()


class Exclusion(AppendOnly):
    """A reader, or one reading (slot) of a reader, left out of the analysis, with the reason.

    ``slot`` empty: every reading of the assignment's reader is excluded. Nothing is deleted:
    answers stay stored and exported analyses can show what was excluded and why.
    """

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="exclusions")
    assignment = models.ForeignKey("studies.Assignment", on_delete=models.PROTECT, related_name="exclusions")
    slot = models.ForeignKey("studies.Slot", null=True, blank=True, on_delete=models.PROTECT, related_name="exclusions")
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        what = f"position {self.slot.position}" if self.slot_id else "every reading"
        return f"{self.assignment.reader.username}, {what}: {self.reason}"

    def clean(self) -> None:
        self.reason = (self.reason or "").strip()
        if not self.reason:
            raise ValidationError({"reason": "give the reason for the exclusion: it is reported with the analysis"})
        if self.assignment.study_id != self.study_id:
            raise ValidationError("the reader is not in this study")
        if self.slot_id and self.slot.assignment_id != self.assignment_id:
            raise ValidationError("that reading belongs to another reader")

    def save(self, *args, **kwargs):
        self.clean()
        super().save(*args, **kwargs)
