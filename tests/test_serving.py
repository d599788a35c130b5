"""Production serving: gunicorn serves the demo, as `manage.py demo` builds it, to its reader, analyst
and coordinator in Chromium, and its workers never load torch.

The demo is built into a folder of its own (SQLite file, image store, var/) by `manage.py demo
--no-serve --real-images 18`: the same two studies, four people and coordinator as `make demo`,
from the first 18 radiographs of its archive instead of 48 (what the studies draw; it halves the
build, about 25 s of the test's 40–60 s on an idle 2-core box). gunicorn is then started the
documented way (README, Deploy: `gunicorn -c gunicorn.conf.py`, JOBS_MODE=celery) on a free port.
The security settings of a production environment and `check --deploy` are tested with the
web-hygiene tests.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from readerstudy.studies.management.commands.demo import MIN_REAL_IMAGES
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.site_process import BIN, SiteProcesses, free_port, wait_until

require_chromium()
pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory):
    site = SiteProcesses(tmp_path_factory.mktemp("served") / "site", OMP_NUM_THREADS="1")
    built = site.manage("demo", "--no-serve", "--real-images", str(MIN_REAL_IMAGES), timeout=900)
    passwords = dict(re.findall(r"^\s+(\w+)\s+password (\S+)", built, re.MULTILINE))
    assert set(passwords) == {"coordinator", "analyst", "radiologist", "surgeon"}, built
    site.env["JOBS_MODE"] = "celery"  # as in production: the web process never generates
    port = free_port()
    site.env |= {"GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"}
    server = site.start(str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", log="gunicorn.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{url}/login/"), 60, 0.2, f"gunicorn on port {port} ({site.log('gunicorn.log')})")
    yield site, url, server, passwords
    site.stop_all()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def worker_pids(server) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def has_torch_loaded(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


class Server:
    def __init__(self, url: str):
        self.url = url


def stored_answers(site: SiteProcesses, username: str) -> int:
    return int(site.shell(
        "from readerstudy.studies.models import Answer; "
        f"print(Answer.objects.filter(slot__assignment__reader__username={username!r}).count())").splitlines()[-1])


def test_gunicorn_serves_the_demo_to_its_people_and_its_workers_never_load_torch(served_demo, browser):
    site, url, server, passwords = served_demo
    server_url = Server(url)
    paired, mixed = (int(pk) for pk in site.shell(
        "from readerstudy.studies.models import Study; "
        "print(*(Study.objects.get(name=n).pk for n in ('Demo paired study', 'Demo mixed study')))").split()[-2:])

    # The radiologist reads the demo's paired study: every case's images drawn, answers stored.
    page = log_in(browser.new_context(viewport={"width": 1280, "height": 800}), server_url, "radiologist", passwords["radiologist"])
    assert page.locator("text=Demo paired study").count() and page.locator("text=Demo mixed study").count()
    page.click(f"a[href='/studies/{paired}/']")
    page.click("#begin")
    for position in (1, 2, 3):
        page.wait_for_selector(f"text=Case {position} of 12")
        page.wait_for_selector("#reader.shown")
        assert page.evaluate("""() => Array.from(document.querySelectorAll('canvas')).every((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let min = 255, max = 0;
            for (let i = 0; i < d.length; i += 4 * 97) { min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
            return max - min > 40; })""")
        if position == 1:
            screenshot(page, "gunicorn-demo-reader-paired")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Case 4 of 12")
    assert stored_answers(site, "radiologist") == 3

    # The analyst's report of that study, and the coordinator's console, from the same workers.
    analyst = log_in(browser.new_context(), server_url, "analyst", passwords["analyst"])
    assert analyst.goto(f"{url}/studies/{paired}/report/").status == 200
    screenshot(analyst, "gunicorn-demo-analyst-report")
    coordinator = log_in(browser.new_context(), server_url, "coordinator", passwords["coordinator"])
    assert coordinator.goto(f"{url}/console/studies/{mixed}/").status == 200
    assert coordinator.locator("text=Demo mixed study").count()

    pids = worker_pids(server)
    assert len(pids) == 2
    assert not any(has_torch_loaded(pid) for pid in pids), "a gunicorn worker loaded torch on the reader's path"
    assert "torch is loaded" not in site.log("gunicorn.log")
