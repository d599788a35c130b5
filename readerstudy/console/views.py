"""The coordinator's console: studies, their lifecycle, preparation and monitoring."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from readerstudy.console.permissions import coordinator_required
from readerstudy.studies.models import Study


@coordinator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.order_by("name")
    return render(request, "console/dashboard.html", {"studies": studies})
