"""Who may coordinate: the coordinator role is enough (no superuser, no Django admin)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from readerstudy.accounts.models import profile_of


def coordinator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not profile_of(request.user).is_coordinator:
            raise PermissionDenied("This page is for study coordinators.")
        return view(request, *args, **kwargs)

    return checked
