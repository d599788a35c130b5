"""Web hygiene: login lockout, a strict Content-Security-Policy every page works under,
`check --deploy` clean under the documented production environment, styled error pages."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.test import Client
from django.urls import include, path

from readerstudy.accounts.models import Role
from tests.conftest import make_user

REPO = Path(__file__).resolve().parent.parent


def boom(request):
    raise RuntimeError("a bug")


def forbidden(request):
    raise PermissionDenied


# Used by the error-page tests (pytest.mark.urls): the site's URLs plus views that fail.
urlpatterns = [path("boom/", boom), path("forbidden/", forbidden), path("", include("readerstudy.urls"))]


def attempt(client: Client, url: str, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_repeated_wrong_passwords_lock_the_login(settings, url):
    make_user("rad")
    boss = make_user("boss", role=Role.COORDINATOR)
    boss.is_staff = boss.is_superuser = True
    boss.save()
    username = "boss" if url.startswith("/admin") else "rad"
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, url, username, "wrong").status_code == 200  # the form again, with its error
    # The limit-th wrong guess locks; 30 more change nothing, and the right password is refused while locked.
    for _ in range(31):
        assert attempt(client, url, username, "wrong").status_code == 429
    locked = attempt(client, url, username, "pw-" + username)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The same account from another address is not locked: an attacker cannot lock a reader out.
    other = Client()
    assert attempt(other, url, username, "pw-" + username, address="10.0.0.2").status_code == 302
    assert "_auth_user_id" in other.session


@pytest.mark.django_db
def test_a_right_password_before_the_limit_resets_the_count(settings):
    make_user("rad")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "/login/", "rad", "wrong")
    assert attempt(client, "/login/", "rad", "pw-rad").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(Client(), "/login/", "rad", "wrong").status_code == 200
    assert attempt(Client(), "/login/", "rad", "pw-rad").status_code == 302


def csp_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
def test_every_page_carries_a_strict_policy(make_study, readers):
    study = make_study("mixed", cases=2)
    analyst = Client()
    analyst.force_login(make_user("ana", role=Role.ANALYST))
    reader = Client()
    reader.force_login(readers[0])
    responses = [
        Client().get("/login/"), reader.get("/"), reader.get(f"/studies/{study.pk}/"), reader.get(f"/studies/{study.pk}/read/"),
        analyst.get(f"/studies/{study.pk}/report/"), reader.get("/no-such-page/"),
    ]
    for response in responses:
        policy = csp_of(response)
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert not any("unsafe" in source for sources in policy.values() for source in sources)


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"\sstyle\s*=", re.I), "inline style attribute"),
    (re.compile(r"<style", re.I), "inline <style>"),
]


def test_no_template_needs_inline_script_or_style():
    found = [
        f"{template.relative_to(REPO)}: {what}"
        for template in (REPO / "templates").rglob("*.html")
        for pattern, what in INLINE
        if pattern.search(template.read_text())
    ]
    assert not found, found


@pytest.mark.django_db
@pytest.mark.urls("tests.test_web_hygiene")
def test_error_pages_are_styled(readers):
    client = Client(raise_request_exception=False)
    client.force_login(readers[0])
    for url, status, heading in [("/no-such-page/", 404, "Not found"), ("/forbidden/", 403, "Not allowed"),
                                 ("/boom/", 500, "Something went wrong")]:
        response = client.get(url)
        assert response.status_code == status
        html = response.content.decode()
        assert f"<h1>{heading}</h1>" in html and "css/site.css" in html and 'class="topbar"' in html, url


def test_the_500_page_needs_no_request_and_no_database():
    # Rendered the way Django's handler renders it: no request, no context processors; a
    # test without the django_db mark would fail on any query.
    html = render_to_string("500.html")
    assert "Something went wrong" in html and "css/site.css" in html


PRODUCTION_ENV = {
    "DEBUG": "False",
    "SECRET_KEY": secrets.token_urlsafe(50),  # a real one comes from a secrets manager
    "ALLOWED_HOSTS": "readerstudy.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://readerstudy.example.org",
    "SECURE_COOKIES": "True",
    "SECURE_SSL_REDIRECT": "True",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
    "SECURE_HSTS_PRELOAD": "True",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
}


def deploy_check(tmp_path, extra: dict[str, str]) -> subprocess.CompletedProcess:
    # Only the documented variables: nothing the test run itself sets (browser tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE, which check --deploy rightly refuses) leaks into the check.
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(extra, READERSTUDY_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="readerstudy.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_check_deploy_is_clean_under_the_documented_production_environment(tmp_path):
    readme = (REPO / "README.md").read_text()
    for name in PRODUCTION_ENV:
        assert f"`{name}`" in readme, f"{name} is not documented in README's Configuration"
    clean = deploy_check(tmp_path, PRODUCTION_ENV)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no issues" in clean.stdout
    # And the check is real: without the HTTPS settings it warns.
    plain = deploy_check(tmp_path, {k: v for k, v in PRODUCTION_ENV.items() if not k.startswith("SECURE_")})
    assert plain.returncode != 0 and "security.W004" in plain.stdout + plain.stderr


def test_lockout_counts_the_client_behind_the_trusted_proxies(settings, rf):
    from readerstudy.hygiene import client_address

    request = rf.get("/login/", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4", REMOTE_ADDR="10.0.0.9")
    settings.PROXY_COUNT = 0
    assert client_address(request) == "10.0.0.9"  # no proxy trusted: the header may be forged
    settings.PROXY_COUNT = 1
    assert client_address(request) == "1.2.3.4"  # what our proxy saw; 6.6.6.6 was written by the client
    settings.PROXY_COUNT = 3
    assert client_address(request) == "10.0.0.9"
