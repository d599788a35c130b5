from __future__ import annotations

import io

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from readerstudy.accounts.models import profile_of
from readerstudy.analysis.export import rows_for_study
from readerstudy.analysis.report import build_report
from readerstudy.analysis.tidy import write_csv
from readerstudy.studies.models import Study


def _study_for_analyst(request: HttpRequest, study_id: int) -> Study:
    if not profile_of(request.user).is_analyst:
        raise PermissionDenied("Reports are for analysts and coordinators")
    return get_object_or_404(Study, pk=study_id)


def _report(study: Study) -> dict:
    return build_report(rows_for_study(study), margin=study.equivalence_margin)


@login_required
def report(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_for_analyst(request, study_id)
    return render(request, "analysis/study_report.html", {"study": study, "report": _report(study)})


@login_required
def report_json(request: HttpRequest, study_id: int) -> JsonResponse:
    study = _study_for_analyst(request, study_id)
    return JsonResponse(_report(study), json_dumps_params={"indent": 2, "sort_keys": True})


@login_required
def answers_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    study = _study_for_analyst(request, study_id)
    buffer = io.StringIO()
    write_csv(rows_for_study(study), buffer)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-answers.csv"'
    return response
