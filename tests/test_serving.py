"""Production serving: gunicorn with gunicorn.conf.py serves the reader's pages, and its workers never load torch.

A small study like the demo's (a paired study read by the demo's radiologist, with a tiny
generator: `manage.py demo` itself takes minutes on this shared machine) is built into a
folder of its own (SQLite file, image store) in a subprocess, then served by gunicorn started
the documented way (README, Deploy) on a free port, with JOBS_MODE=celery as in production. The security settings of a
production environment and `check --deploy` are tested with engineer 12b's web-hygiene tests.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import smooth_image, write_png16
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.site_process import BIN, SiteProcesses, free_port, wait_until

require_chromium()
pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("served")
    archive = folder / "archive"
    archive.mkdir()
    for i in range(12):
        write_png16(archive / f"real-{i}.png", smooth_image(i))
    site = SiteProcesses(folder / "site", JOBS_MODE="inline", OMP_NUM_THREADS="1")
    site.manage("migrate", "--verbosity", "0")
    site.shell(f"""
from pathlib import Path
from django.contrib.auth.models import User
from readerstudy.accounts.models import Profile
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Pool
from readerstudy.studies.generation import prepare
from readerstudy.studies.models import Generator, Study
pool = Pool.objects.create(name="tiny", presentation_size=32, bit_depth=16)
import_images(Path({str(archive)!r}), pool)
study = Study.objects.create(name="Paired demo", design="paired", pool=pool, case_count=8, seed=5, is_open=True)
study.generators.set([Generator.objects.create(name="tiny", path={str(tiny_checkpoint)!r})])
prepare(study)
for name, role in (("radiologist", "reader"), ("analyst", "analyst")):
    user = User.objects.create_user(name, password="pw-" + name)
    Profile.objects.create(user=user, role=role, specialty="radiologist", years_experience=5)
study.assign(User.objects.get(username="radiologist"))
""")
    site.env["JOBS_MODE"] = "celery"  # as in production: the web process never generates
    port = free_port()
    site.env |= {"GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"}
    server = site.start(str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", log="gunicorn.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{url}/login/"), 60, 0.2, f"gunicorn on port {port} ({site.log('gunicorn.log')})")
    yield site, url, server
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


def test_gunicorn_serves_the_demo_to_a_reader_and_its_workers_never_load_torch(served_demo, browser):
    site, url, server = served_demo
    paired = int(site.shell("from readerstudy.studies.models import Study; print(Study.objects.get(design='paired').pk)").splitlines()[-1])
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = log_in(context, Server(url), "radiologist")
    page.click(f"a[href='/studies/{paired}/']")
    page.click("#begin")
    for position in (1, 2, 3):
        page.wait_for_selector(f"text=Case {position} of")
        page.wait_for_selector("#reader.shown")
        assert page.evaluate("""() => Array.from(document.querySelectorAll('canvas')).every((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let min = 255, max = 0;
            for (let i = 0; i < d.length; i += 4 * 97) { min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
            return max - min > 40; })""")
        if position == 1:
            screenshot(page, "gunicorn-reader-paired")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Case 4 of")
    stored = json.loads(site.shell(
        "import json; from readerstudy.studies.models import Answer; "
        "print(json.dumps(Answer.objects.filter(slot__assignment__reader__username='radiologist').count()))").splitlines()[-1])
    assert stored == 3

    # The analyst's report page, served by the same workers.
    analyst = log_in(browser.new_context(), Server(url), "analyst")
    response = analyst.goto(f"{url}/studies/{paired}/report/")
    assert response.status == 200
    screenshot(analyst, "gunicorn-analyst-report")

    pids = worker_pids(server)
    assert len(pids) == 2
    assert not any(has_torch_loaded(pid) for pid in pids), "a gunicorn worker loaded torch on the reader's path"
    assert "torch is loaded" not in site.log("gunicorn.log")
