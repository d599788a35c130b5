"""What a reader sees: their studies, instructions, one case at a time, and images.

Blinding rules these views follow: a reader's page and its image URLs are
built the same way for real and synthetic images; images are served with the
same headers from the same store; a reader never learns whether a scored
answer was correct (practice cases, flagged and excluded from analysis, give
feedback).
"""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readerstudy.accounts.models import profile_of
from readerstudy.archive.encoding import CONTENT_TYPE
from readerstudy.archive.models import Image
from readerstudy.reading.payload import PayloadError, parse_answer
from readerstudy.studies.models import Answer, Assignment, Design, ServedImage, Slot, Study



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
    slot = assignment.next_slot()
    if slot is None:
        assignment.mark_completed_if_done()
        return render(request, "reading/finished.html", {"study": study})
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
    panes = [{"url": url} for url in image_urls(slot)]
    if study.design == Design.PAIRED:
        panes[0]["label"], panes[1]["label"] = "Left", "Right"
    else:
        panes[0]["label"] = "Image"
    previous = {a.question: a for a in slot.answers.filter(revision=slot.latest_revision() or 0)}
    questions = [
        {"question": q, "previous": previous[q.key].answer if q.key in previous else ""} for q in study.questions.all()
    ]
    earlier = slot.position - 1 if study.allow_back and slot.position - 1 > practice else None
    context = {
        "study": study,
        "slot": slot,
        "panes": panes,
        "questions": questions,
        "previous": previous.get(study.question),
        "is_practice": slot.case.is_practice,
        "number": slot.position if slot.case.is_practice else slot.position - practice,
        "count": practice if slot.case.is_practice else total - practice,
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
    """Store an answer exactly once. Repeating a request with the same key is harmless.

    Malformed payloads are a 400 with a message (see payload.py); the same
    idempotency key with different content is a 409, never "already stored".
    """
    assignment = _assignment(request, study_id)
    try:
        payload = parse_answer(request.body)
    except PayloadError as error:
        return _bad(str(error))
    key, choice, reading_ms, client = payload.idempotency_key, payload.answer, payload.reading_ms, payload.client

    next_url = reverse("read", args=[study_id])
    slot = get_object_or_404(Slot.objects.select_related("case", "assignment__study"), assignment=assignment, position=position)
    study = assignment.study
    valid = ("left", "right") if study.design == Design.PAIRED else ("real", "synthetic")
    if choice not in valid:
        return _bad(f"answer must be one of {', '.join(valid)}")
    confidence = payload.confidence if study.design == Design.MIXED else None
    if study.design == Design.MIXED and confidence is None:
        return _bad("confidence must be 1 to 5")
    responses = {study.question: choice}
    try:
        for question in study.questions.all():
            value = question.validate_answer(payload.questions.get(question.key))
            if value is not None:
                responses[question.key] = value
    except ValueError as error:
        return _bad(str(error))
    reading = {"responses": responses, "confidence": confidence, "reading_ms": reading_ms, "client": client}

    def repeated() -> JsonResponse | None:
        """The answer to a request whose key is already stored; None if it is not."""
        if not Answer.objects.filter(idempotency_key=key).exists():
            return None
        if slot.stored_reading(key) != reading:
            return _bad("this idempotency key was already used for a different answer", 409)
        return JsonResponse({"status": "already stored", "next": next_url, **_feedback(slot)})

    if (response := repeated()) is not None:
        return response
    if slot.first_served_at is None:
        return _bad("this case was never served", 409)
    if slot.answers.exists() and not slot.is_revisable:
        # Looked up again: the same request may have been stored since the first look.
        return repeated() or JsonResponse({"status": "already answered", "next": next_url, **_feedback(slot)})
    for _ in range(3):  # a revisable slot whose next revision was just taken claims the one after
        try:
            revision = slot.record(key, responses, confidence=confidence, reading_ms=reading_ms, client=client)
            break
        except IntegrityError:  # another request won the race; the database let exactly one in
            if (response := repeated()) is not None:
                return response
            if not slot.is_revisable:
                return JsonResponse({"status": "already answered", "next": next_url, **_feedback(slot)})
    else:
        return _bad("too many answers to this case at once; try again", 409)
    assignment.mark_completed_if_done()
    return JsonResponse({"status": "revised" if revision else "stored", "next": next_url, **_feedback(slot)})


def _feedback(slot: Slot) -> dict:
    """Practice cases tell the reader the truth; scored cases never do."""
    if not slot.case.is_practice:
        return {}
    given = slot.answers.get(question=slot.assignment.study.question, revision=0).answer
    return {"feedback": {"correct": given == slot.truth, "truth": slot.truth}}


# ---- Images (blinding, issue 12a) ----

# Every image response carries exactly these headers, whatever its source. No
# Last-Modified (synthetic images are created later than real ones), no ETag. URLs
# are per reader and study (image_urls), so a cached copy is only ever reused for
# the same reader in the same study: never across studies or readers.
IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=86400, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
}


def image_urls(slot: Slot) -> list[str]:
    """The URLs of a slot's images in display order: tokens of this reader's assignment alone.

    The same image gets another URL in another study and for another reader, so neither
    the URL nor the browser cache can link its appearances.
    """
    tokens = ServedImage.tokens_for(slot.assignment, slot.images_in_display_order())
    return [reverse("image", args=[token]) for token in tokens]


@login_required
@require_GET
def image(request: HttpRequest, token: str) -> HttpResponse:
    """Serve a presentation image to the reader whose token it is (or, by its own token, to a coordinator)."""
    served = (
        ServedImage.objects.filter(token=token, assignment__reader=request.user, assignment__study__is_open=True)
        .select_related("image").only("image__token").first()
    )
    image = served.image if served else None
    if image is None and profile_of(request.user).is_coordinator:
        image = Image.objects.filter(token=token).only("token").first()
    if image is None:
        raise Http404("No such image")
    try:
        data = image.read_bytes()
    except FileNotFoundError:  # the store lost the file (restored backup, manual deletion): not a server crash
        raise Http404("No such image") from None
    response = HttpResponse(data, content_type=CONTENT_TYPE)
    for name, value in IMAGE_HEADERS.items():
        response[name] = value
    return response
