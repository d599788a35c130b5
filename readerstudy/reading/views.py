"""What a reader sees: their studies, instructions, one case at a time, and images.

Blinding rules these views follow: a reader's page and its image URLs are
built the same way for real and synthetic images; images are served with the
same headers from the same store; a reader never learns whether a scored
answer was correct (practice cases, flagged and excluded from analysis, give
feedback).
"""

from __future__ import annotations

import json
import uuid

from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readerstudy.accounts.models import profile_of
from readerstudy.archive.encoding import CONTENT_TYPE
from readerstudy.archive.models import Image
from readerstudy.studies.models import Answer, Assignment, Design, Phase, Slot, Study

MAX_READING_MS = 24 * 3600 * 1000
MAX_CLIENT_BYTES = 20_000


@login_required
def home(request: HttpRequest) -> HttpResponse:
    profile = profile_of(request.user)
    assignments = (
        Assignment.objects.filter(reader=request.user, study__is_open=True).select_related("study").order_by("study__name")
    )
    rows = [(a, *a.progress()) for a in assignments]
    studies = Study.objects.order_by("name") if profile.is_analyst or profile.is_coordinator else Study.objects.none()
    return render(request, "reading/home.html", {"profile": profile, "rows": rows, "studies": studies})


def _assignment(request: HttpRequest, study_id: int) -> Assignment:
    assignment = Assignment.objects.filter(study_id=study_id, reader=request.user, study__is_open=True).select_related("study").first()
    if assignment is None:
        raise Http404("No such study for this reader")
    return assignment


@login_required
def instructions(request: HttpRequest, study_id: int) -> HttpResponse:
    assignment = _assignment(request, study_id)
    done, total = assignment.progress()
    context = {"assignment": assignment, "study": assignment.study, "done": done, "total": total}
    return render(request, "reading/instructions.html", context)


@login_required
def read(request: HttpRequest, study_id: int) -> HttpResponse:
    """The next unanswered case: reloading or coming back later resumes here."""
    assignment = _assignment(request, study_id)
    study = assignment.study
    if not study.is_ready():
        return render(request, "reading/not_ready.html", {"study": study}, status=503)
    if opens_at := assignment.waiting_until():  # a wash-out: the repeat block is not served before its date
        return render(request, "reading/washout.html", {"study": study, "opens_at": opens_at})
    slot = assignment.next_slot()
    if slot is None:
        assignment.mark_completed_if_done()
        return render(request, "reading/finished.html", {"study": study})
    if slot.phase == Phase.REVEAL and slot.position == study.case_count + 1 and slot.first_served_at is None and "continue" not in request.GET:
        return render(request, "reading/reveal.html", {"study": study})  # told only now, after every image was graded
    scored_index = slot.position - study.practice_case_count - 1
    takes_break = (
        study.break_every and not slot.case.is_practice and scored_index > 0
        and scored_index % study.break_every == 0 and slot.first_served_at is None
    )
    if takes_break and "continue" not in request.GET:
        done, total = assignment.progress()
        practice = study.practice_case_count
        return render(request, "reading/break.html", {"study": study, "done": done - practice, "total": total - practice})
    return _case_page(request, assignment, slot)


@login_required
def review(request: HttpRequest, study_id: int, position: int) -> HttpResponse:
    """An earlier scored case, to revise its answer (only where the study allows going back)."""
    assignment = _assignment(request, study_id)
    slot = get_object_or_404(assignment.slots.select_related("case"), position=position)
    if not assignment.study.allow_back or slot.case.is_practice or not slot.answers.exists():
        return redirect("read", study_id)
    return _case_page(request, assignment, slot)


def _case_page(request: HttpRequest, assignment: Assignment, slot: Slot) -> HttpResponse:
    study = assignment.study
    slot.mark_served()
    done, total = assignment.progress()
    practice = study.practice_case_count
    panes = [{"url": reverse("image", args=[image.token])} for image in slot.images_in_display_order()]
    if study.design == Design.PAIRED:
        panes[0]["label"], panes[1]["label"] = "Left", "Right"
    else:
        panes[0]["label"] = "Image"
    previous = {a.question: a for a in slot.answers.filter(revision=slot.latest_revision() or 0)}
    main_question, further = slot.questions_to_ask()
    questions = [
        {"question": q, "previous": previous[q.key].answer if q.key in previous else ""} for q in further
    ]
    if slot.phase in (Phase.GRADE, Phase.REVEAL):  # grade-then-reveal: each block counts its own cases
        number, count = (slot.position, study.case_count) if slot.phase == Phase.GRADE else (slot.position - study.case_count, study.case_count)
    else:
        number = slot.position if slot.case.is_practice else slot.position - practice
        count = practice if slot.case.is_practice else total - practice
    earlier = slot.position - 1 if study.allow_back and slot.position - 1 > practice else None
    context = {
        "study": study,
        "slot": slot,
        "panes": panes,
        "questions": questions,
        "previous": previous.get(study.question),
        "is_practice": slot.case.is_practice,
        "number": number,
        "count": count,
        # What the page asks: "grade" asks the grading questions alone (no word of synthetic images).
        "reader_design": "grade" if main_question is None else ("paired" if study.design == Design.PAIRED else "mixed"),
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "seconds_left": assignment.seconds_left(done, total),
        "back_url": reverse("review", args=[study.pk, earlier]) if earlier else "",
        # A fresh key for this rendering; a retried or double-clicked submit repeats it.
        "idempotency_key": uuid.uuid4(),
        "answer_url": reverse("answer", args=[study.pk, slot.position]),
    }
    return render(request, "reading/read.html", context)


def _bad(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@login_required
@require_POST
def answer(request: HttpRequest, study_id: int, position: int) -> JsonResponse:
    """Store an answer exactly once. Repeating a request with the same key is harmless."""
    assignment = _assignment(request, study_id)
    try:
        payload = json.loads(request.body)
        key = uuid.UUID(str(payload["idempotency_key"]))
        choice = str(payload.get("answer"))
        reading_ms = int(payload["reading_ms"])
        confidence = payload.get("confidence")
        client = payload.get("client") or {}
        further = payload.get("questions") or {}
        if not isinstance(client, dict) or not isinstance(further, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _bad("malformed answer: expected JSON with idempotency_key, answer and reading_ms")

    next_url = reverse("read", args=[study_id])
    slot = get_object_or_404(Slot.objects.select_related("case", "assignment__study"), assignment=assignment, position=position)
    stored = Answer.objects.filter(idempotency_key=key).select_related("slot").first()
    if stored is not None:
        if stored.slot_id != slot.pk:
            return _bad("this key belongs to another answer", 409)
        return JsonResponse({"status": "already stored", "next": next_url, **_feedback(slot)})

    study = assignment.study
    main_question, further_questions = slot.questions_to_ask()
    valid = ("left", "right") if study.design == Design.PAIRED else ("real", "synthetic")
    if main_question is not None and choice not in valid:
        return _bad(f"answer must be one of {', '.join(valid)}")
    if main_question is not None and study.design != Design.PAIRED:
        if confidence is None or str(confidence) not in {"1", "2", "3", "4", "5"}:
            return _bad("confidence must be 1 to 5")
        confidence = int(confidence)
    else:
        confidence = None
    if not 0 <= reading_ms <= MAX_READING_MS or len(json.dumps(client)) > MAX_CLIENT_BYTES:
        return _bad("reading_ms or client state out of range")
    responses = {study.question: choice} if main_question is not None else {}
    try:
        for question in further_questions:
            value = question.validate_answer(further.get(question.key))
            if value is not None:
                responses[question.key] = value
    except ValueError as error:
        return _bad(str(error))
    if not responses:
        return _bad("answer at least one question")
    if slot.first_served_at is None:
        return _bad("this case was never served", 409)
    revising = slot.answers.exists()
    if revising and (not study.allow_back or slot.case.is_practice):
        return JsonResponse({"status": "already answered", "next": next_url, **_feedback(slot)})
    try:
        slot.record(key, responses, confidence=confidence, reading_ms=reading_ms, client=client)
    except IntegrityError:  # a concurrent duplicate won the race; the answer is stored once
        return JsonResponse({"status": "already stored", "next": next_url, **_feedback(slot)})
    assignment.mark_completed_if_done()
    return JsonResponse({"status": "revised" if revising else "stored", "next": next_url, **_feedback(slot)})


def _feedback(slot: Slot) -> dict:
    """Practice cases tell the reader the truth; scored cases never do."""
    if not slot.case.is_practice:
        return {}
    given = slot.answers.get(question=slot.assignment.study.question, revision=0).answer
    return {"feedback": {"correct": given == slot.truth, "truth": slot.truth}}


# Every image response carries exactly these headers, whatever its source.
# No Last-Modified: synthetic images are created later than real ones.
IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=86400, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
}


@login_required
@require_GET
def image(request: HttpRequest, token: str) -> HttpResponse:
    """Serve a presentation image to someone entitled to see it."""
    image = Image.objects.filter(token=token).only("token").first()
    if image is None or not _may_view(request, image):
        raise Http404("No such image")
    response = HttpResponse(image.read_bytes(), content_type=CONTENT_TYPE)
    for name, value in IMAGE_HEADERS.items():
        response[name] = value
    return response


def _may_view(request: HttpRequest, image: Image) -> bool:
    if profile_of(request.user).is_coordinator:
        return True
    # One query either way, so the check takes no longer for one source than the other.
    return Slot.objects.filter(
        Q(case__real_image=image) | Q(case__synthetic_image=image),
        assignment__reader=request.user,
        assignment__study__is_open=True,
    ).exists()
