"""Every page works in Chromium under the strict Content-Security-Policy: nothing is blocked.

The browser reports each blocked script, style, image or fetch as a
`securitypolicyviolation` event; an init script (injected by the browser
driver, so not itself subject to the policy) records them on every page.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from readerstudy.accounts.models import Role
from readerstudy.studies.models import Answer
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.conftest import make_user

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def watched(browser, live_server, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORD_VIOLATIONS)
    console = []
    page = log_in(context, live_server, username)
    page.on("console", lambda message: console.append(message.text) if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))
    return page, console


def violations(page) -> list[str]:
    return page.evaluate("window.__violations || []")


def test_reading_report_and_admin_pages_work_under_the_policy(browser, live_server, make_study):
    study = make_study("mixed", cases=3)
    make_user("ana", role=Role.ANALYST)
    User.objects.create_superuser("boss", password="pw-boss")

    page, console = watched(browser, live_server, "rad")
    seen = []
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    # The detector works: an inline style attribute is blocked and recorded.
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_function("window.__violations.length > 0")
    assert any(v.startswith("style-src") for v in violations(page))
    assert any("Content Security Policy" in message for message in console)
    console.clear()
    page.reload()
    seen += violations(page)
    page.click("#begin")
    for position in (1, 2, 3):
        page.wait_for_selector(f"text=Case {position} of 3")
        page.wait_for_selector("#reader.shown")
        # The progress bar's width is set through the DOM (CSSOM), which the policy allows.
        width = page.evaluate("parseFloat(document.querySelector('.progress-fill').style.width)")
        assert abs(width - 100 * (position - 1) / 3) < 0.01
        if position == 1:
            screenshot(page, "csp-reader")
        seen += violations(page)
        page.keyboard.press("s")
        page.keyboard.press("3")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    seen += violations(page)
    assert Answer.objects.filter(slot__assignment__reader__username="rad").count() == 3  # the fetch POSTs went through

    analyst, analyst_console = watched(browser, live_server, "ana")
    analyst.goto(f"{live_server.url}/studies/{study.pk}/report/")
    analyst.wait_for_selector("svg")
    screenshot(analyst, "csp-report", full_page=True)
    seen += violations(analyst)
    analyst.goto(f"{live_server.url}/studies/{study.pk}/power/")
    seen += violations(analyst)
    analyst.goto(f"{live_server.url}/no-such-page/")
    assert "Not found" in analyst.inner_text("h1")
    screenshot(analyst, "csp-404")
    seen += violations(analyst)

    admin, admin_console = watched(browser, live_server, "boss")
    for url in ("/admin/", f"/admin/studies/study/{study.pk}/change/", "/admin/studies/study/", "/admin/archive/image/"):
        admin.goto(f"{live_server.url}{url}")
        admin.wait_for_load_state("load")
        seen += violations(admin)
    screenshot(admin, "csp-admin")

    assert not seen, seen
    assert not console + analyst_console + admin_console, console + analyst_console + admin_console
