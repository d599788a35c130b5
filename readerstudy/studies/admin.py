from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from readerstudy.studies.generation import prepare
from readerstudy.studies.models import Answer, Assignment, Case, GeneratorCheckpoint, Question, Study


@admin.register(GeneratorCheckpoint)
class GeneratorCheckpointAdmin(admin.ModelAdmin):
    list_display = ["name", "path", "sha256", "created_at"]
    readonly_fields = ["sha256", "config"]


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0


class AssignmentInline(admin.TabularInline):
    model = Assignment
    fields = ["reader", "seed", "completed_at"]
    readonly_fields = ["seed", "completed_at"]
    extra = 0

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "design", "pool", "generator", "case_count", "is_open", "created_at"]
    list_filter = ["design", "is_open"]
    inlines = [QuestionInline, AssignmentInline]
    readonly_fields = ["planning"]

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

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        study = form.instance
        if study.cases.exists():
            for assignment in study.assignments.all():
                study.assign(assignment.reader)

    @admin.action(description="Draw cases, generate synthetic images and open for reading")
    def prepare_and_open(self, request, queryset):
        for study in queryset:
            try:
                prepare(study)
            except ValidationError as error:
                self.message_user(request, f"{study}: {'; '.join(error.messages)}", messages.ERROR)
                continue
            for assignment in study.assignments.select_related("reader"):
                study.assign(assignment.reader)
            study.is_open = True
            study.save(update_fields=["is_open"])
            self.message_user(request, f"{study}: {study.cases.count()} cases ready and open")

    @admin.action(description="Close for reading")
    def close(self, request, queryset):
        queryset.update(is_open=False)


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["study", "index", "real_image", "synthetic_image", "synthetic_seed"]
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
