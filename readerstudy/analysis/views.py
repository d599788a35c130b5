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
from readerstudy.analysis.imrmc import ImrmcFormatError, to_imrmc
from readerstudy.analysis.report.plots import report_figures
from readerstudy.analysis.statistics.power import GOALS, PILOT_METHOD, sample_size_grid, sds_from_components, smallest_for
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
    state = {"state": str(study.state), "protocol_hash": study.protocol_hash or None}
    stamp = make_stamp(rows, source="site", states={study.name: state})
    scales = {q.key: q.scale for q in study.questions.all() if q.kind == "choice" and getattr(q, "scale", "")}
    return build_report(rows, margin=study.equivalence_margin, questions=questions, rule=rule, scales=scales,
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
    """The study's recorded exclusions (studies.records.Exclusion): a whole reader, or one
    reading, named by its case number as in the tidy CSV, with the reason."""
    out = []
    for record in study.exclusions.select_related("assignment__reader", "slot__case"):
        case = str(record.slot.case.index + 1) if record.slot_id else None
        out.append(Exclusion(study.name, record.assignment.reader.username, case, record.reason))
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
    """How many readers and cases a study needs: power by simulation under the MRMC model, with the
    reader and case variation taken from this study's own readings (the pilot) or entered."""
    study = _study_for_analyst(request, study_id)
    pilot = _pilot(study)
    params = request.GET
    error = ""
    grids = []
    try:
        source = params.get("source", "pilot" if pilot["available"] else "entered")
        if source == "pilot" and pilot["available"]:
            reader_sd, case_sd = pilot["reader_sd"], pilot["case_sd"]
            basis = (f"this study's own readings ({pilot['n_readers']} readers × {pilot['n_cases']} cases): "
                     f"Var(R) = {pilot['var_r']:.6g}, Cov2 = {pilot['cov2']:.6g}; {PILOT_METHOD}")
        else:
            source = "entered"
            reader_sd = _number(params, "reader_sd", 0.3, low=0)
            case_sd = _number(params, "case_sd", 0.6, low=0)
            basis = "entered standard deviations" + ("" if pilot["available"] else f" ({pilot['note']})")
        default_accuracy = pilot["accuracy"] if pilot["available"] else 0.55
        accuracy = _number(params, "accuracy", round(default_accuracy, 4), low=0, high=1)
        readers = _integers(params, "readers", [5, 10, 15, 20])
        cases = _integers(params, "cases", [50, 100, 200, 400])
        goals = [params["goal"]] if params.get("goal") in GOALS else list(GOALS)
        for goal in goals:
            grid = sample_size_grid(readers, cases, true_accuracy=accuracy, margin=study.equivalence_margin,
                                    goal=goal, reader_sd=reader_sd, case_sd=case_sd, n_sim=200)
            grid["rows"] = [
                {"readers": r, "cells": [{"power": p, "mc_se": se, "meets": p >= 0.8, "meets90": p >= 0.9}
                                         for p, se in zip(power_row, se_row)]}
                for r, power_row, se_row in zip(grid["readers"], grid["power"], grid["mc_se"])
            ]
            grid["smallest80"], grid["smallest90"] = smallest_for(grid, 0.8), smallest_for(grid, 0.9)
            grids.append(grid)
    except ValueError as problem:
        grids, error = [], str(problem)
        source, basis, reader_sd, case_sd, accuracy, readers, cases = "entered", "", None, None, None, [], []
    context = {"study": study, "grids": grids, "error": error, "pilot": pilot, "source": source, "basis": basis,
               "reader_sd": params.get("reader_sd", reader_sd), "case_sd": params.get("case_sd", case_sd),
               "accuracy": params.get("accuracy", accuracy), "readers": params.get("readers", ",".join(map(str, readers))),
               "cases": params.get("cases", ",".join(map(str, cases))), "goal": params.get("goal", "both")}
    return render(request, "analysis/power.html", context)


def _pilot(study: Study) -> dict:
    """The study's own accuracy and OR variance components (complete readers), converted to the power model's SDs."""
    report = build_report(rows_for_study(study), margin=study.equivalence_margin, bootstrap=0,
                          expected=None) if study.assignments.exists() else {"studies": []}
    if not report["studies"]:
        return {"available": False, "note": "no readings yet to use as a pilot"}
    accuracy = report["studies"][0]["mrmc"]["accuracy"]
    tables = accuracy.get("or_tables")
    estimate = accuracy["random_readers_random_cases"]["estimate"]
    if tables is None or estimate is None or not 0 < estimate < 1:
        return {"available": False, "note": "the pilot's variance components are not defined: " + (accuracy.get("note") or
                "accuracy at 0 or 1")}
    var_r, cov2 = tables["components"]["var_r"], tables["components"]["cov2"]
    reader_sd, case_sd = sds_from_components(var_r, cov2, tables["n_cases"], estimate)
    return {"available": True, "accuracy": estimate, "var_r": var_r, "cov2": cov2, "var_error": tables["components"]["var_error"],
            "n_readers": accuracy["n_readers"], "n_cases": tables["n_cases"], "reader_sd": reader_sd, "case_sd": case_sd}


def _number(params, name: str, default: float, low: float | None = None, high: float | None = None) -> float:
    text = params.get(name, "")
    if text == "":
        return float(default)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if (low is not None and value < low) or (high is not None and value > high) or value != value:
        raise ValueError(f"{name}: {text} is out of range")
    return value


def _integers(params, name: str, default: list[int]) -> list[int]:
    text = params.get(name, "").strip()
    if not text:
        return default
    try:
        values = sorted({int(part) for part in text.replace(" ", ",").split(",") if part})
    except ValueError:
        raise ValueError(f"{name}: give whole numbers separated by commas, e.g. 5,10,20") from None
    if not values or values[0] < 2 or values[-1] > 2000 or len(values) > 8:
        raise ValueError(f"{name}: 1 to 8 numbers from 2 to 2000")
    return values
