"""Preview as a reader: a coordinator reads their study exactly as a reader would, in any state,
and nothing is written to the database.

The preview's reading order is the plan a reader with the coordinator's seed would get, built in
memory (unsaved Assignment and Slot objects); no Assignment, Slot or Answer row is ever created.
Its answer endpoint checks an answer as the real one does and answers with what would have been
stored, storing nothing. Practice cases give their feedback, as they would to a reader. The time
limit restarts on a reload (nothing is stored to keep it).
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readerstudy.reading.cases import CaseView, image_urls
from readerstudy.reading.views import reading_page_context
from readerstudy.studies.models import Assignment, Design, Slot, Study


def may_preview(user, study: Study) -> bool:
    """The study's coordinators (its owner and those it was given to) and superusers."""
    return study.is_coordinated_by(user)


def _study(request: HttpRequest, study_id: int) -> Study:
    study = get_object_or_404(Study, pk=study_id)
    if not may_preview(request.user, study):
        raise PermissionDenied("Only the study's coordinators may preview it")
    return study


def preview_slots(study: Study, user) -> list[Slot]:
    """The reading order a reader would get, in memory only: nothing is saved."""
    cases = {case.index: case for case in study.cases.select_related("real_image", "synthetic_image")}
    assignment = Assignment(study=study, reader=user, seed=study.reader_seed(user))
    if len(cases) < study.case_count + study.practice_case_count or not all(c.is_ready for c in cases.values()):
        return []
    return [
        Slot(assignment=assignment, position=position, case=cases[index], synthetic_side=side, phase=assignment.phase_at(position))
        for position, (index, side) in enumerate(assignment.plan(), start=1)
    ]


def _view(study: Study, slots: list[Slot], position: int) -> CaseView:
    slot = slots[position - 1]
    following = slots[position] if position < len(slots) else None
    return CaseView(
        study=study,
        slot=slot,
        done=position - 1,
        total=len(slots),
        answer_url=reverse("preview_answer", args=[study.pk, position]),
        prefetch=tuple(image_urls(following)) if following else (),
        preview=True,
    )


@login_required
@require_GET
def preview(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    slots = preview_slots(study, request.user)
    if not slots:
        return render(request, "reading/preview_unready.html", {"study": study}, status=409)
    view = _view(study, slots, 1)
    # Each preview answer names the next case's description (next_case), so the page needs no next_url.
    context = reading_page_context(request, view, next_url="")
    return render(request, "reading/read.html", {**context, "preview": True})


@login_required
@require_GET
def preview_case(request: HttpRequest, study_id: int, position: int) -> JsonResponse:
    study = _study(request, study_id)
    slots = preview_slots(study, request.user)
    if position > len(slots):
        return JsonResponse({"kind": "finished", "url": reverse("preview_end", args=[study.pk])})
    if not 1 <= position:
        raise Http404("No such case")
    return JsonResponse(_view(study, slots, position).describe())


@login_required
@require_GET
def preview_end(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study(request, study_id)
    return render(request, "reading/preview_end.html", {"study": study, "count": len(preview_slots(study, request.user))})


@login_required
@require_POST
def preview_answer(request: HttpRequest, study_id: int, position: int) -> JsonResponse:
    """Check an answer as a reader's would be checked; store nothing, say what would have been stored."""
    study = _study(request, study_id)
    slots = preview_slots(study, request.user)
    if not 1 <= position <= len(slots):
        raise Http404("No such case")
    slot = slots[position - 1]
    try:
        payload = json.loads(request.body)
        choice = "" if payload.get("answer") is None else str(payload["answer"])
        further = payload.get("questions") or {}
        confidence = payload.get("confidence")
        if not isinstance(further, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "malformed answer: expected JSON with answer and reading_ms"}, status=400)
    valid = ("left", "right") if study.design == Design.PAIRED else ("real", "synthetic")
    main, questions = slot.questions_to_ask()  # a grade-then-reveal grading case asks its questions only
    if main is not None and choice not in valid:
        return JsonResponse({"error": f"answer must be one of {', '.join(valid)}"}, status=400)
    would_store = {main: choice} if main is not None else {}
    if main is not None and study.design in (Design.MIXED, Design.GRADE_REVEAL):
        if confidence is None or str(confidence) not in {"1", "2", "3", "4", "5"}:
            return JsonResponse({"error": "confidence must be 1 to 5"}, status=400)
        would_store["confidence"] = str(confidence)
    try:
        for question in questions:
            value = question.validate_answer(further.get(question.key))
            if value is not None:
                would_store[question.key] = value
    except ValueError as error:
        return JsonResponse({"error": str(error)}, status=400)
    result = {"status": "preview", "stored": False, "would_store": would_store, "next_case": reverse("preview_case", args=[study.pk, position + 1])}
    if slot.case.is_practice:
        result["feedback"] = {"correct": choice == slot.truth, "truth": slot.truth}
    return JsonResponse(result)
