from __future__ import annotations

import csv
import io

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe

from readerstudy.accounts.models import profile_of
from readerstudy.analysis.export import rows_for_study, study_provenance
from readerstudy.analysis.imrmc import to_imrmc
from readerstudy.analysis.report.plots import report_figures
from readerstudy.analysis.statistics.power import sample_size_grid
from readerstudy.analysis.report import FLAT_COLUMNS, build_report, flat_rows
from readerstudy.analysis.report.cases import CASE_COLUMNS, case_rows
from readerstudy.archive.encoding import CONTENT_TYPE
from readerstudy.analysis.report.completeness import DEFAULT_RULE, RULES, Exclusion, Expected
from readerstudy.analysis.report.format import for_display
from readerstudy.analysis.report.stamps import make_stamp
from readerstudy.analysis.tidy import write_csv
from readerstudy.studies.models import Design, Study


def _study_for_analyst(request: HttpRequest, study_id: int) -> Study:
    if not profile_of(request.user).is_analyst:
        raise PermissionDenied("Reports are for analysts and coordinators")
    return get_object_or_404(Study, pk=study_id)


def _report(study: Study, rule: str = DEFAULT_RULE) -> dict:
    """The study's report under a completeness rule, with the study's readers and
    scored cases (so a reader who has not started is named), its state and stamp."""
    questions = {q.key: (q.choice_list() if q.kind == "choice" else None) for q in study.questions.all()}
    rows = rows_for_study(study)
    expected = Expected(
        readers=tuple(study.assignments.values_list("reader__username", flat=True)),
        cases=tuple(str(index + 1) for index in study.cases.filter(is_practice=False).values_list("index", flat=True)),
    )
    state = {"state": "open" if study.is_open else "closed",
             # Study.protocol_hash comes with the study lifecycle (frozen protocols); None until then.
             "protocol_hash": getattr(study, "protocol_hash", None)}
    stamp = make_stamp(rows, source="site", states={study.name: state})
    return build_report(rows, margin=study.equivalence_margin, questions=questions, rule=rule,
                        exclusions=recorded_exclusions(study), expected={study.name: expected},
                        open_studies={study.name} if study.is_open else set(), stamp=stamp,
                        machine_scores={study.name: _machine_scores(study)})


def _machine_scores(study: Study) -> dict[int, float] | None:
    """Per-case machine-reader scores where the machine reader has scored the
    study (readerstudy/analysis/machine_reader.py); None otherwise."""
    try:
        from readerstudy.analysis.machine_reader import machine_scores
    except ImportError:
        return None
    return machine_scores(study)


def _gallery(study: Study, report: dict) -> dict[str, dict]:
    """case number -> its images' analyst-only URLs and its share of readers fooled."""
    cases = {c["case"]: c for study_report in report["studies"] for c in (study_report.get("cases") or {}).get("cases", [])}
    out = {}
    for case in study.cases.filter(is_practice=False).only("index", "real_image_id", "synthetic_image_id"):
        number = str(case.index + 1)
        result = cases.get(number)
        if result is None:
            continue
        out[number] = {
            "synthetic": reverse("case_image", args=[study.pk, case.index + 1, "synthetic"]) if case.synthetic_image_id else None,
            "real": reverse("case_image", args=[study.pk, case.index + 1, "real"]) if case.real_image_id else None,
            "share_wrong_percent": round(100 * result["share_wrong"]), "n_wrong": result["n_wrong"],
            "n_readers": result["n_readers"], "source": result["source"],
        }
    return out


def recorded_exclusions(study: Study) -> list[Exclusion]:
    """The study's recorded exclusions (a reader, or one reading, with its reason).

    Reads `study.exclusions` (one row per exclusion: reader, case index or
    None for the whole reader, reason) where the study has such records;
    without them there are none."""
    records = getattr(study, "exclusions", None)
    if records is None:
        return []
    out = []
    for record in records.all():
        case = getattr(record, "case", None)
        index = getattr(case, "index", case)
        out.append(Exclusion(study.name, record.reader.username, None if index is None else str(index + 1),
                             record.reason))
    return out


def _rule(request: HttpRequest) -> str:
    rule = request.GET.get("rule", DEFAULT_RULE)
    return rule if rule in RULES else DEFAULT_RULE


@login_required
def report(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_for_analyst(request, study_id)
    rule = _rule(request)
    report = for_display(_report(study, rule))
    figures = {name: mark_safe(svg) for name, svg in report_figures(report).items()}  # escaped when built
    context = {"study": study, "report": report, "figures": figures, "sources": study.sources(),
               "privacy": study.privacy_summary(), "rule": rule, "rules": RULES, "gallery": _gallery(study, report)}
    return render(request, "analysis/study_report.html", context)


@login_required
def report_json(request: HttpRequest, study_id: int) -> JsonResponse:
    study = _study_for_analyst(request, study_id)
    return JsonResponse(_report(study, _rule(request)), json_dumps_params={"indent": 2, "sort_keys": True})


@login_required
def report_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    """The summary figures (flat_rows) at full precision, with the report's stamp."""
    study = _study_for_analyst(request, study_id)
    report = _report(study, _rule(request))
    return _csv_response(FLAT_COLUMNS, flat_rows(report), f"study-{study.pk}-summary.csv")


@login_required
def cases_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    """Per-case results (share of readers fooled, by specialty) at full precision."""
    study = _study_for_analyst(request, study_id)
    return _csv_response(CASE_COLUMNS, case_rows(_report(study, _rule(request))), f"study-{study.pk}-cases.csv")


@login_required
def case_image(request: HttpRequest, study_id: int, case_number: int, kind: str) -> HttpResponse:
    """A case's real or synthetic image, for the analyst's gallery only (never a reader's URL)."""
    study = _study_for_analyst(request, study_id)
    case = get_object_or_404(study.cases.select_related("real_image", "synthetic_image"), index=case_number - 1,
                             is_practice=False)
    image = case.synthetic_image if kind == "synthetic" else case.real_image if kind == "real" else None
    if image is None:
        raise Http404("No such image")
    response = HttpResponse(image.read_bytes(), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "private, no-store"
    return response


def _csv_response(columns, rows, filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
    response = HttpResponse(to_imrmc(rows_for_study(study)), content_type="text/plain")
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
