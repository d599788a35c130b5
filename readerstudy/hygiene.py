"""Web hygiene the framework does not do by itself."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import Http404

# The largest primary key any supported database can hold (a signed 64-bit integer).
MAX_ID = 2**63 - 1


class OutOfRangeIdsMiddleware:
    """A URL whose integer part no database column can hold is a 404, not a 500.

    ``<int:...>`` accepts any number of digits; SQLite raises OverflowError on
    a 20-digit id instead of finding nothing. One check here covers every view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        for value in (*view_args, *view_kwargs.values()):
            if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
                raise Http404("No such object")
        return None


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout for every login made over the web (``/login/``, ``/admin/login/``).

    An authentication without a request (a management command, the test
    client's ``login``) has no client address to lock and is not a web login:
    it is left to the next backend instead of failing, as axes' own backend does.
    """

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request) -> str | None:
    """The client's address for login lockout, trusting exactly ``PROXY_COUNT`` reverse proxies.

    Each proxy appends the address it received the request from to
    X-Forwarded-For, so with N proxies the client is the N-th entry from the
    right; anything further left was written by the client and may be forged.
    """
    count = settings.PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")
