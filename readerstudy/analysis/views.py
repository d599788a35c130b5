from __future__ import annotations

import io

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe

from readerstudy.accounts.models import profile_of
from readerstudy.analysis.export import rows_for_study, study_provenance
from readerstudy.analysis.imrmc import ImrmcFormatError, to_imrmc
from readerstudy.analysis.plots import report_figures
from readerstudy.analysis.power import sample_size_grid
from readerstudy.analysis.report import build_report
from readerstudy.analysis.tidy import write_csv
from readerstudy.studies.models import Design, Study


def _study_for_analyst(request: HttpRequest, study_id: int) -> Study:
    if not profile_of(request.user).is_analyst:
        raise PermissionDenied("Reports are for analysts and coordinators")
    return get_object_or_404(Study, pk=study_id)


def _report(study: Study) -> dict:
    questions = {q.key: (q.choice_list() if q.kind == "choice" else None) for q in study.questions.all()}
    return build_report(rows_for_study(study), margin=study.equivalence_margin, questions=questions)


@login_required
def report(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_for_analyst(request, study_id)
    report = _report(study)
    figures = {name: mark_safe(svg) for name, svg in report_figures(report).items()}  # escaped when built
    context = {"study": study, "report": report, "figures": figures, "sources": study.sources(), "privacy": study.privacy_summary()}
    return render(request, "analysis/study_report.html", context)


@login_required
def report_json(request: HttpRequest, study_id: int) -> JsonResponse:
    study = _study_for_analyst(request, study_id)
    return JsonResponse(_report(study), json_dumps_params={"indent": 2, "sort_keys": True})


@login_required
def provenance_json(request: HttpRequest, study_id: int) -> JsonResponse:
    """How every case was made: for the methods section and for repeating the study (analysts only)."""
    study = _study_for_analyst(request, study_id)
    return JsonResponse(study_provenance(study), json_dumps_params={"indent": 2, "sort_keys": True})


@login_required
def answers_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_for_analyst(request, study_id)
    buffer = io.StringIO()
    write_csv(rows_for_study(study), buffer)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-answers.csv"'
    return response


@login_required
def answers_imrmc(request: HttpRequest, study_id: int) -> HttpResponse:
    """The study's ratings in iMRMC's input format (mixed studies: ratings are ROC scores)."""
    study = _study_for_analyst(request, study_id)
    if study.design != Design.MIXED:
        return HttpResponse("iMRMC input needs a rating per image: only mixed studies have one.", status=400, content_type="text/plain")
    rows = rows_for_study(study)
    if not rows:
        return HttpResponse("No iMRMC file for this study: it has no answers yet.", status=409, content_type="text/plain")
    try:
        text = to_imrmc(rows)
    except ImrmcFormatError as error:  # e.g. no rated answers yet: nothing iMRMC could read
        return HttpResponse(f"No iMRMC file for this study: {error}.", status=409, content_type="text/plain")
    response = HttpResponse(text, content_type="text/plain")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}.imrmc"'
    return response


@login_required
def power(request: HttpRequest, study_id: int) -> HttpResponse:
    """How many readers and cases the study needs: power by simulation under the MRMC model."""
    study = _study_for_analyst(request, study_id)
    try:
        accuracy = float(request.GET.get("accuracy", "0.55"))
        goal = request.GET.get("goal", "equivalence")
        grid = sample_size_grid(
            [5, 10, 15, 20], [50, 100, 200, 400], true_accuracy=accuracy, margin=study.equivalence_margin, goal=goal, n_sim=200
        )
        grid["rows"] = [
            {"readers": r, "cells": [{"power": p, "mc_se": se, "meets": m} for p, se, m in zip(*cells)]}
            for r, *cells in zip(grid["readers"], grid["power"], grid["mc_se"], grid["meets_target"])
        ]
        error = ""
    except ValueError as problem:
        grid, error = None, str(problem)
    context = {"study": study, "grid": grid, "accuracy": request.GET.get("accuracy", "0.55"), "goal": request.GET.get("goal", "equivalence"), "error": error}
    return render(request, "analysis/power.html", context)
