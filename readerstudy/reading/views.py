"""What a reader sees: their studies, instructions, one case at a time, and images.

The reading page is loaded once per session (``read``); each following case is fetched as a
JSON description (``next_case``, built by ``cases.CaseView``) and swapped in place. JSON views
end a reading with their own status and reason (closed 410, lost session 401, not a reader
404), never the login page's HTML.

Blinding rules these views follow: a reader's page and its image URLs are
built the same way for real and synthetic images; images are served with the
same headers from the same store; a reader never learns whether a scored
answer was correct (practice cases, flagged and excluded from analysis, give
feedback).
"""

from __future__ import annotations

import functools
import json
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
from readerstudy.reading.cases import CaseView, image_urls
from readerstudy.reading.instructions import CONFIDENCE_ANCHORS, instructions_for, main_question, question_keys
from readerstudy.reading.payload import PayloadError, parse_answer
from readerstudy.studies.models import Answer, Assignment, Design, Phase, ServedImage, Slot, Study



@login_required
def home(request: HttpRequest) -> HttpResponse:
    profile = profile_of(request.user)
    assignments = (
        Assignment.objects.filter(reader=request.user, study__is_open=True).select_related("study").order_by("study__name")
    )
    rows = [(a, *a.progress()) for a in assignments]
    # Analysts (coordinators are analysts too) read every study's report; Configure is offered only where it is allowed.
    coordinated = Study.objects.coordinated_by(request.user) if profile.is_coordinator else Study.objects.none()
    studies = Study.objects.all() if profile.is_analyst else coordinated
    context = {"profile": profile, "rows": rows, "studies": studies.order_by("name"),
               "coordinated": set(coordinated.values_list("pk", flat=True))}
    return render(request, "reading/home.html", context)


class ReadingEnded(Exception):
    """Why a reader cannot read on: each reason has its own message in the page, and none is retried."""

    def __init__(self, reason: str, message: str, status: int):
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status

    def response(self) -> JsonResponse:
        return JsonResponse({"error": self.message, "ending": self.reason}, status=self.status)


STUDY_CLOSED = "This study was closed by its coordinator. Your answers up to this case are saved; no more can be given."
SESSION_LOST = "You were logged out. Log in again to carry on: your answer is kept in this browser and sent once you are back."


def _open_assignment(request: HttpRequest, study_id: int) -> Assignment:
    """The reader's assignment in an open study; ReadingEnded when the study was closed or is not theirs."""
    assignment = Assignment.objects.filter(study_id=study_id, reader=request.user).select_related("study").first()
    if assignment is None:
        raise ReadingEnded("gone", "You are not a reader of this study.", 404)
    if not assignment.study.is_open:
        raise ReadingEnded("closed", STUDY_CLOSED, 410)
    return assignment


def _assignment(request: HttpRequest, study_id: int) -> Assignment:
    try:
        return _open_assignment(request, study_id)
    except ReadingEnded as ended:
        if ended.reason == "closed":
            raise StudyClosedPage from ended
        raise Http404("No such study for this reader") from ended


class StudyClosedPage(Exception):
    pass


def reading_page(view):
    """An HTML reading view: a reader of a study that was closed gets a page saying so (410)."""

    @functools.wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except StudyClosedPage:
            return render(request, "reading/closed.html", {"message": STUDY_CLOSED}, status=410)

    return wrapped


def reading_json(view):
    """A JSON reading view: a lost session is a 401 and an ended reading its own status, as JSON
    (never the login page's HTML, which a script would take for success)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": SESSION_LOST, "ending": "session"}, status=401)
        try:
            return view(request, *args, **kwargs)
        except ReadingEnded as ended:
            return ended.response()

    return wrapped


@reading_page
def instructions(request: HttpRequest, study_id: int) -> HttpResponse:
    assignment = _assignment(request, study_id)
    done, total = assignment.progress()
    slot = assignment.next_slot() or assignment.slots.order_by("position").last()
    design, further = _block_of(assignment.study, slot)
    text = instructions_for(assignment.study, total=total, done=done, reader_design=design)
    if assignment.study.design == Design.GRADE_REVEAL:  # the current block's cases only (grading says nothing of a second part)
        done, total = text.scored - text.left, text.scored
    context = {"assignment": assignment, "study": assignment.study, "done": done, "total": total, "text": text,
               **_instruction_questions(assignment.study, design, further)}
    return render(request, "reading/instructions.html", context)


def _block_of(study: Study, slot: Slot | None) -> tuple[str, list]:
    """What the reader's current block asks: (reader design as CaseView.reader_design, further questions)."""
    if slot is None:
        return ("paired" if study.design == Design.PAIRED else "mixed"), list(study.questions.all())
    main, further = slot.questions_to_ask()
    return ("grade" if main is None else "paired" if study.design == Design.PAIRED else "mixed"), further


def _instruction_questions(study: Study, reader_design: str = "", further: list | None = None) -> dict:
    further = list(study.questions.all()) if further is None else further
    return {"main_text": main_question(study, reader_design), "further": question_keys(further), "anchors": CONFIDENCE_ANCHORS}


def _reveal_comes_first(study: Study, slot: Slot) -> bool:
    """Grade-then-reveal: the reader is told synthetic images are present only after the last grade,
    on a page of its own before the first reveal case (until that case is first served)."""
    return slot.phase == Phase.REVEAL and slot.position == study.case_count + 1 and slot.first_served_at is None


def _takes_break(study: Study, slot: Slot) -> bool:
    scored_index = slot.position - study.practice_case_count - 1
    return bool(
        study.break_every and not slot.case.is_practice and scored_index > 0
        and scored_index % study.break_every == 0 and slot.first_served_at is None
    )


@reading_page
def read(request: HttpRequest, study_id: int) -> HttpResponse:
    """The next unanswered case: reloading or coming back later resumes here."""
    assignment = _assignment(request, study_id)
    study = assignment.study
    if not study.is_ready():
        return render(request, "reading/not_ready.html", {"study": study}, status=503)
    slot = assignment.next_slot()
    if opens_at := assignment.waiting_until(slot):  # a wash-out: the repeat block is not served before its date
        return render(request, "reading/washout.html", {"study": study, "opens_at": opens_at})
    if slot is None:
        assignment.mark_completed_if_done()
        return render(request, "reading/finished.html", {"study": study})
    if _reveal_comes_first(study, slot) and "continue" not in request.GET:
        return render(request, "reading/reveal.html", {"study": study})
    if _takes_break(study, slot) and "continue" not in request.GET:
        done, total = assignment.progress()
        practice = study.practice_case_count
        return render(request, "reading/break.html", {"study": study, "done": done - practice, "total": total - practice})
    return _case_page(request, assignment, slot)


@reading_json
@require_GET
def next_case(request: HttpRequest, study_id: int) -> JsonResponse:
    """The next unanswered case as JSON (or that a break or the end comes first): the page swaps it in."""
    assignment = _open_assignment(request, study_id)
    study = assignment.study
    if not study.is_ready():
        return JsonResponse({"kind": "not_ready", "url": reverse("read", args=[study_id])})
    slot = assignment.next_slot()
    if opens_at := assignment.waiting_until(slot):  # the page shows the wash-out message; the case is not served
        return JsonResponse({"kind": "washout", "opens_at": opens_at.isoformat(), "url": reverse("read", args=[study_id])})
    if slot is None:
        assignment.mark_completed_if_done()
        return JsonResponse({"kind": "finished", "url": reverse("read", args=[study_id])})
    if _reveal_comes_first(study, slot):  # the reveal page, then its Continue serves the first reveal case
        return JsonResponse({"kind": "reveal", "url": reverse("read", args=[study_id])})
    if _takes_break(study, slot) and "continue" not in request.GET:
        done, total = assignment.progress()
        practice = study.practice_case_count
        return JsonResponse({"kind": "break", "done": done - practice, "total": total - practice})
    return JsonResponse(_case_view(assignment, slot).describe())


@reading_page
def review(request: HttpRequest, study_id: int, position: int) -> HttpResponse:
    """An earlier scored case, to revise its answer (only where the study allows going back)."""
    assignment = _assignment(request, study_id)
    slot = get_object_or_404(assignment.slots.select_related("case"), position=position)
    if not assignment.study.allow_back or slot.case.is_practice or not slot.answers.exists():
        return redirect("read", study_id)
    return _case_page(request, assignment, slot)


def _case_view(assignment: Assignment, slot: Slot) -> CaseView:
    study = assignment.study
    slot.mark_served()
    done, total = assignment.progress()
    practice = study.practice_case_count
    latest = slot.latest_revision()
    previous = {a.question: (a.answer, a.confidence) for a in slot.answers.filter(revision=latest)} if latest is not None else {}
    earlier = slot.position - 1 if study.allow_back and slot.position - 1 > practice else None
    following = (
        assignment.slots.filter(position=slot.position + 1, answers__isnull=True)
        .select_related("case__real_image", "case__synthetic_image").first()
    )
    return CaseView(
        study=study,
        slot=slot,
        done=done,
        total=total,
        answer_url=reverse("answer", args=[study.pk, slot.position]),
        back_url=reverse("review", args=[study.pk, earlier]) if earlier else "",
        prefetch=tuple(image_urls(following)) if following and latest is None else (),
        previous=previous,
        seconds_left_estimate=assignment.seconds_left(done, total),
    )


def _case_page(request: HttpRequest, assignment: Assignment, slot: Slot) -> HttpResponse:
    view = _case_view(assignment, slot)
    return render(request, "reading/read.html", reading_page_context(request, view, next_url=reverse("next_case", args=[view.study.pk])))


def reading_page_context(request: HttpRequest, view: CaseView, *, next_url: str) -> dict:
    """The reading page around its first case (readers and previews alike)."""
    study = view.study
    done, total = view.done, view.total
    description = view.describe()
    return {
        "study": study,
        "view": view,
        "description": description,
        "idempotency_key": description["idempotency_key"],
        "fields_html": description["fields_html"],
        "next_url": next_url,
        "text": instructions_for(study, total=total, done=done, reader_design=view.reader_design),
        **_instruction_questions(study, view.reader_design, view.questions[1]),
    }


def _bad(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@reading_json
@require_POST
def answer(request: HttpRequest, study_id: int, position: int) -> JsonResponse:
    """Store an answer exactly once. Repeating a request with the same key is harmless.

    Malformed payloads are a 400 with a message (see payload.py); the same
    idempotency key with different content is a 409, never "already stored".
    """
    try:
        payload = parse_answer(request.body)
    except PayloadError as error:
        _open_assignment(request, study_id)  # a reading that ended says so first
        return _bad(str(error))
    key, choice, reading_ms, client = payload.idempotency_key, payload.answer, payload.reading_ms, payload.client

    next_url = reverse("read", args=[study_id])
    # One query finds the slot with its case, assignment and study, and what the checks below need.
    slot = Slot.objects.for_answer(study_id, request.user, position, key)
    if slot is None:
        _open_assignment(request, study_id)  # not a reader of the study (404), or it was closed (410)
        raise Http404("No such case")
    assignment, study = slot.assignment, slot.assignment.study
    if not study.is_open:
        raise ReadingEnded("closed", STUDY_CLOSED, 410)
    main_question, further_questions = slot.questions_to_ask()
    valid = ("left", "right") if study.design == Design.PAIRED else ("real", "synthetic")
    if main_question is not None and choice not in valid:
        return _bad(f"answer must be one of {', '.join(valid)}")
    # Confidence goes with real or synthetic: mixed studies and a grade-then-reveal study's reveal.
    asks_confidence = main_question is not None and study.design in (Design.MIXED, Design.GRADE_REVEAL)
    confidence = payload.confidence if asks_confidence else None
    if asks_confidence and confidence is None:
        return _bad("confidence must be 1 to 5")
    responses = {study.question: choice} if main_question is not None else {}
    try:
        for question in further_questions:
            value = question.validate_answer(payload.questions.get(question.key))
            if value is not None:
                responses[question.key] = value
    except ValueError as error:
        return _bad(str(error))
    if not responses:  # a grading case whose questions are all optional, left blank: nothing to store
        return _bad("answer at least one question")
    reading = {"responses": responses, "confidence": confidence, "reading_ms": reading_ms, "client": client}

    def repeated() -> JsonResponse | None:
        """The answer to a request whose key is already stored; None if it is not."""
        if not Answer.objects.filter(idempotency_key=key).exists():
            return None
        if slot.stored_reading(key) != reading:
            return _bad("this idempotency key was already used for a different answer", 409)
        return JsonResponse({"status": "already stored", "next": next_url, **_feedback(slot)})

    if slot.key_used and (response := repeated()) is not None:
        return response
    if slot.first_served_at is None:
        return _bad("this case was never served", 409)
    if slot.is_answered and not slot.is_revisable:
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
    if slot.is_last:  # cases are served in order, so only the last one's answer can complete the reading
        assignment.mark_completed_if_done()  # (and the reading pages mark it when they find no case left)
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



@login_required
@require_GET
def image(request: HttpRequest, token: str) -> HttpResponse:
    """Serve a presentation image to the reader whose token it is (or, by its own token, to a coordinator)."""
    image_token = (
        ServedImage.objects.filter(token=token, assignment__reader=request.user, assignment__study__is_open=True)
        .values_list("image__token", flat=True).first()
    )
    if image_token is None and profile_of(request.user).is_coordinator:
        image_token = Image.objects.filter(token=token).values_list("token", flat=True).first()
    if image_token is None:
        raise Http404("No such image")
    try:
        data = Image.read_stored(image_token)
    except FileNotFoundError:  # the store lost the file (restored backup, manual deletion): not a server crash
        raise Http404("No such image") from None
    response = HttpResponse(data, content_type=CONTENT_TYPE)
    for name, value in IMAGE_HEADERS.items():
        response[name] = value
    return response
