"""The coordinator console: the coordinator role alone is enough."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import make_user


@pytest.mark.django_db
def test_console_is_for_coordinators_without_superuser(client):
    make_user("coord", role="coordinator")
    make_user("reader1")
    client.login(username="coord", password="pw-coord")
    assert client.get(reverse("console:dashboard")).status_code == 200
    client.login(username="reader1", password="pw-reader1")
    assert client.get(reverse("console:dashboard")).status_code == 403
