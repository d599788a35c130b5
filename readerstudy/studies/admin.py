from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from readerstudy.jobs.engine import enqueue
from readerstudy.studies.lifecycle import State
from readerstudy.studies.models import Answer, Assignment, AuditEntry, Case, Exclusion, Generator, Question, Study


@admin.register(Generator)
class GeneratorAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "path", "privacy_screen", "sha256", "created_at"]
    list_filter = ["kind"]

    def get_readonly_fields(self, request, obj=None):
        # Studies and cached images name the generator by its files' hashes: register a new one instead.
        fixed = ["kind", "path", "privacy_screen"] if obj else []
        return fixed + ["sha256", "privacy_sha256", "config"]


class StudyForm(forms.ModelForm):
    class Meta:
        model = Study
        # Readers are added in the assignments below, each with their own seed; whether readers may
        # read follows the lifecycle actions (Study.open/close), never a checkbox.
        exclude = ["readers", "is_open"]

    def clean(self):
        cleaned = super().clean()
        study, generators = self.instance, list(cleaned.get("generators") or [])
        if study.pk and study.cases.exists() and {g.pk for g in generators} != {g.pk for g in study.sources()}:
            raise ValidationError("cases are already drawn: the generators can no longer change")
        if "pool" in cleaned and cleaned["pool"] is not None:
            study.pool = cleaned["pool"]
        study.label = cleaned.get("label")
        for problem in study.source_problems(generators):
            self.add_error("generators", problem)
        return cleaned


class QuestionInline(admin.TabularInline):
    """Questions are fixed once a reader has answered: every case must be asked the same."""

    model = Question
    extra = 0

    def _open_to_change(self, study: Study | None) -> bool:
        if study is not None and study.is_frozen:
            return False
        return study is None or not Answer.objects.filter(slot__assignment__study=study).exists()

    def has_add_permission(self, request, obj=None):
        return self._open_to_change(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._open_to_change(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._open_to_change(obj) and super().has_delete_permission(request, obj)


class AssignmentInline(admin.TabularInline):
    model = Assignment
    fields = ["reader", "seed", "completed_at"]
    readonly_fields = ["seed", "completed_at"]
    extra = 0

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    form = StudyForm
    list_display = ["name", "design", "pool", "sources", "case_count", "state", "created_at"]
    list_filter = ["design", "state"]
    inlines = [QuestionInline, AssignmentInline]
    readonly_fields = ["state", "protocol_hash", "planning", "privacy"]

    @admin.display(description="Synthetic sources")
    def sources(self, study: Study) -> str:
        return ", ".join(g.name for g in study.sources())

    @admin.display(description="Privacy screen")
    def privacy(self, study: Study) -> str:
        return study.privacy_summary() or "no generator of this study has a privacy screen"

    @admin.display(description="Planning and results")
    def planning(self, study: Study) -> str:
        if not study.pk:
            return "Save the study first."
        return format_html(
            '<a href="{}">Readers and cases needed (power by simulation)</a> · <a href="{}">Report</a>',
            reverse("power", args=[study.pk]),
            reverse("report", args=[study.pk]),
        )
    actions = ["prepare_and_open", "close"]

    def save_model(self, request, obj, form, change):
        obj.audit_user = request.user  # the audit log names who changed what
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        study = form.instance
        if study.cases.exists():
            for assignment in study.assignments.all():
                study.assign(assignment.reader)

    @admin.action(description="Prepare (draw cases, generate synthetic images) and open for reading")
    def prepare_and_open(self, request, queryset):
        """The same lifecycle methods and background job as the console."""
        for study in queryset:
            try:
                if study.state == State.DRAFT:
                    study.start_preparing(request.user)
                    enqueue("prepare_study", study=study, user=request.user)
                    study.refresh_from_db()
                if study.state == State.PREPARING:
                    self.message_user(request, f"{study}: preparing in the background; open it when it is ready")
                    continue
                study.open(request.user)
            except ValidationError as error:
                self.message_user(request, f"{study}: {'; '.join(error.messages)}", messages.ERROR)
                continue
            self.message_user(request, f"{study}: {study.cases.count()} cases ready and open")

    @admin.action(description="Close for reading")
    def close(self, request, queryset):
        for study in queryset:
            try:
                study.close(request.user)
            except ValidationError as error:
                self.message_user(request, f"{study}: {'; '.join(error.messages)}", messages.ERROR)


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["study", "index", "real_image", "synthetic_image", "generator", "synthetic_seed", "privacy_refusals"]
    list_filter = ["study"]
    readonly_fields = [f.name for f in Case._meta.fields]


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    """Read-only: answers are append-only."""

    list_display = ["slot", "question", "answer", "confidence", "answered_at", "reading_ms"]
    readonly_fields = [f.name for f in Answer._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(AnswerAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["study", "at", "by", "action", "field", "before", "after"]
    list_filter = ["study"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]


@admin.register(Exclusion)
class ExclusionAdmin(AnswerAdmin):
    """Read-only: exclusions are recorded in the console, with their reason, and never removed."""

    list_display = ["study", "assignment", "slot", "reason", "by", "at"]
    list_filter = ["study"]
    readonly_fields = [f.name for f in Exclusion._meta.fields]
