"""The coordinator's console: studies, their lifecycle, preparation and monitoring.

Every study view checks ``Study.is_coordinated_by``: a coordinator sees and edits only the
studies they own or were given (superusers see all). State changes go through the Study's
lifecycle methods, which refuse what the state does not allow and write the audit log.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readerstudy.console import overview
from readerstudy.console.forms import DESIGN_FIELDS, DESIGN_HELP, DESIGN_NAMES, CloneForm, ExclusionForm, QuestionFormSet, StudyForm
from readerstudy.console.permissions import coordinator_required
from readerstudy.jobs.engine import enqueue, resume_orphans
from readerstudy.jobs.models import Job
from readerstudy.studies.lifecycle import State
from readerstudy.studies.models import Design, Exclusion, Study


@coordinator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    resume_orphans()
    studies = Study.objects.coordinated_by(request.user).order_by("name")
    designs = [(design, DESIGN_NAMES[design], Design(design).label, DESIGN_HELP[design]) for design in DESIGN_FIELDS]
    return render(request, "console/dashboard.html", {"studies": studies, "designs": designs})


def _study(request: HttpRequest, study_id: int) -> Study:
    study = get_object_or_404(Study, pk=study_id)
    if not study.is_coordinated_by(request.user):
        raise PermissionDenied("You do not coordinate this study.")
    study.audit_user = request.user
    return study


def _refused(request: HttpRequest, error: ValidationError) -> None:
    messages.error(request, "; ".join(error.messages))


@coordinator_required
def study_create(request: HttpRequest, design: str) -> HttpResponse:
    if design not in DESIGN_FIELDS:
        return redirect("console:dashboard")
    return _builder(request, Study(design=design, owner=request.user), design)


@coordinator_required
def study_edit(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    if study.state == State.ARCHIVED:
        messages.error(request, "The study is archived: nothing can change.")
        return redirect("console:study", study.pk)
    return _builder(request, study, study.design)


def _builder(request: HttpRequest, study: Study, design: str) -> HttpResponse:
    study.audit_user = request.user
    form = StudyForm(request.POST or None, instance=study, design=design, user=request.user)
    asks_questions = design != Design.PAIRED
    questions_open = asks_questions and not study.is_frozen and not (study.pk and study.has_answers())
    formset = QuestionFormSet(request.POST or None, instance=study, prefix="questions") if questions_open else None
    if request.method == "POST" and form.is_valid() and (formset is None or formset.is_valid()):
        try:
            with transaction.atomic():
                _save(request, form, formset)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Saved {form.instance.name}.")
            return redirect("console:study", form.instance.pk)
    context = {
        "form": form, "formset": formset, "study": study, "design": design, "design_name": DESIGN_NAMES[design],
        "design_label": Design(design).label,
        "design_help": DESIGN_HELP[design], "asks_questions": asks_questions,
        "questions": study.questions.all() if study.pk and not questions_open else [],
    }
    return render(request, "console/study_form.html", context)


def _save(request: HttpRequest, form: StudyForm, formset) -> None:
    study = form.save()
    if formset is not None:
        formset.instance = study
        for question in formset.save(commit=False):
            changed = "added" if question.pk is None else "changed"
            question.save()
            study.log(request.user, f"question {changed}", field=question.key, after=f"{question.label} [{question.choices}]")
        for question in formset.deleted_objects:
            study.log(request.user, "question removed", field=question.key, before=question.label)
            question.delete()
    chosen = set(form.cleaned_data["readers"])
    for group in form.cleaned_data.get("reader_groups") or []:  # a group's members, as if each were ticked
        chosen |= set(group.members.filter(is_active=True))
    current = {a.reader for a in study.assignments.select_related("reader")}
    for reader in sorted(chosen - current, key=lambda u: u.username):
        study.add_reader(reader, request.user)
    for reader in sorted(current - chosen, key=lambda u: u.username):
        study.remove_reader(reader, request.user)


@coordinator_required
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    resume_orphans()
    rows = overview.monitoring(study)
    context = {
        "study": study,
        "summary": overview.summary(study),
        "rows": rows,
        "behind": sum(row.behind for row in rows),
        "job": study.jobs.filter(kind="prepare_study").first(),
        "exclusions": study.exclusions.select_related("assignment__reader", "slot", "by"),
        "audit_log": study.audit_log.select_related("by")[:200],
        "questions": study.questions.all(),
        "State": State,
    }
    return render(request, "console/study_detail.html", context)


@coordinator_required
@require_POST
def study_prepare(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    try:
        study.start_preparing(request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        job = enqueue("prepare_study", study=study, user=request.user)
        if job.is_active:
            messages.success(request, "Preparation started. You can leave this page; it goes on in the background.")
        elif job.status == Job.Status.SUCCEEDED:  # jobs run inline (JOBS_MODE=inline): done already
            messages.success(request, f"{study.name} is prepared: its cases are drawn and every synthetic image is made.")
        # A failed preparation is shown on the study page with its reason.
    return redirect("console:study", study.pk)


@coordinator_required
@require_GET
def study_progress(request: HttpRequest, study_id: int) -> JsonResponse:
    """The preparation's progress, for the study page's progress bar."""
    study = _study(request, study_id)
    resume_orphans()
    job = study.jobs.filter(kind="prepare_study").first()
    body = {"state": study.state, "state_label": study.get_state_display(), "ready": study.is_ready()}
    if job is not None:
        body |= {"status": job.status, "done": job.done, "total": job.total, "percent": job.percent, "message": job.message}
    return JsonResponse(body)


@coordinator_required
@require_POST
def study_open(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    try:
        study.open(request.user)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, f"{study.name} is open: its readers can start. The protocol is frozen.")
    return redirect("console:study", study.pk)


@coordinator_required
def study_close(request: HttpRequest, study_id: int) -> HttpResponse:
    """Closing asks for confirmation first: readers mid-study can no longer answer."""
    study = _study(request, study_id)
    if request.method == "POST":
        try:
            study.close(request.user)
        except ValidationError as error:
            _refused(request, error)
        else:
            messages.success(request, f"{study.name} is closed: no new answers are accepted.")
        return redirect("console:study", study.pk)
    unfinished = [row for row in overview.monitoring(study) if not row.finished]
    return render(request, "console/study_close.html", {"study": study, "unfinished": unfinished})


@coordinator_required
@require_POST
def study_archive(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    try:
        study.archive(request.user)
    except ValidationError as error:
        _refused(request, error)
    return redirect("console:study", study.pk)


@coordinator_required
def study_clone(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    form = CloneForm(request.POST or None, initial={"name": f"{study.name} (copy)"})
    if request.method == "POST" and form.is_valid():
        copy = study.clone(
            form.cleaned_data["name"], by=request.user,
            include_readers=form.cleaned_data["include_readers"], keep_seed=form.cleaned_data["keep_seed"],
        )
        messages.success(request, f"Cloned {study.name} as {copy.name}: a draft, with {'the same' if form.cleaned_data['keep_seed'] else 'a new'} seed.")
        return redirect("console:study", copy.pk)
    return render(request, "console/study_clone.html", {"study": study, "form": form})


@coordinator_required
@require_POST
def study_remind(request: HttpRequest, study_id: int) -> HttpResponse:
    """Email every reader who has not finished (and is not excluded) a link back to the study."""
    study = _study(request, study_id)
    if study.state != State.OPEN:
        messages.error(request, "Reminders go out only while the study is open.")
        return redirect("console:study", study.pk)
    link = request.build_absolute_uri(reverse("instructions", args=[study.pk]))
    sent, without_email = [], []
    for row in overview.monitoring(study):
        reader = row.assignment.reader
        if not row.behind:
            continue
        if not reader.email:
            without_email.append(reader.username)
            continue
        send_mail(
            f"Reminder: {study.name}",
            f"Dear {reader.get_full_name() or reader.username},\n\nyou have read {row.done} of {row.total} cases of "
            f"the reader study \"{study.name}\". Please continue where you left off:\n{link}\n\nThank you.",
            settings.DEFAULT_FROM_EMAIL, [reader.email],
        )
        sent.append(reader.username)
    study.log(request.user, "reminded", after=", ".join(sent) or "nobody")
    if sent:
        messages.success(request, f"Reminded {len(sent)} reader{'s' if len(sent) != 1 else ''}: {', '.join(sent)}.")
    if without_email:
        messages.error(request, f"No email address for {', '.join(without_email)}: remind them another way.")
    if not sent and not without_email:
        messages.info(request, "Every reader has finished: nobody to remind.")
    return redirect("console:study", study.pk)


@coordinator_required
def study_exclude(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    form = ExclusionForm(request.POST or None, study=study, initial={"reader": request.GET.get("reader")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        exclusion = Exclusion.objects.create(
            study=study, assignment=data["assignment"], slot=data["slot"], reason=data["reason"], by=request.user
        )
        study.log(request.user, "excluded", after=str(exclusion))
        messages.success(request, f"Excluded {exclusion}.")
        return redirect("console:study", study.pk)
    return render(request, "console/study_exclude.html", {"study": study, "form": form})

