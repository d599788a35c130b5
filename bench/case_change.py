"""Case change on the reading page, for bench_viewer.py: from Enter to the next case's two
images drawn, over N cases of a paired study, in headless Chromium against the local Django
server (runserver), with and without prefetching the next case, against the neutral screen.

The site is built in a temporary folder (SQLite, its own image store): a pool of 16-bit
radiograph-like images (--size, default 1024), a small random generator at the same size, a paired study of N+1 cases
with the default 500 ms neutral screen, and two readers (one reads with prefetch, one without).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLANK_MS = 500

# Enter (captured before the page sees it) to the frame after the next case is shown: both
# images decoded, drawn to their canvases and made visible in one task, then painted.
TIMING = """
window.__bench = { t0: null, times: [] };
document.addEventListener("keydown", (e) => { if (e.key === "Enter") window.__bench.t0 = performance.now(); }, true);
window.addEventListener("reader:shown", () => requestAnimationFrame(() => setTimeout(() => {
  const b = window.__bench;
  if (b.t0 !== null) { b.times.push(performance.now() - b.t0); b.t0 = null; }
}, 0)));
"""


def build_site(var: Path, cases: int, size: int) -> None:
    """Runs in a child process with READERSTUDY_VAR_DIR set: migrate and create the study."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    import numpy as np
    import torch
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from bench.bench_viewer import radiograph_like
    from generator.checkpoints import save_checkpoint
    from generator.config import GeneratorConfig
    from generator.networks import Generator as Network
    from readerstudy.accounts.models import Profile
    from readerstudy.archive.importing import import_images
    from readerstudy.archive.models import Pool
    from readerstudy.studies.generation import prepare
    from readerstudy.studies.models import Generator, Study
    from PIL import Image

    call_command("migrate", verbosity=0)
    archive = var / "archive"
    archive.mkdir()
    for i in range(cases + 5):
        Image.fromarray(np.rint(radiograph_like(size, seed=i) * 65535).astype(np.uint16)).save(archive / f"r{i:03d}.png")
    pool = Pool.objects.create(name="bench", presentation_size=size, bit_depth=16)
    import_images(archive, pool)
    config = GeneratorConfig(resolution=size, latent_dim=16, base_width=4, max_width=16)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(var / "bench.safetensors", config, Network(config).state_dict())
    generator = Generator.objects.create(name="bench", path=str(checkpoint))
    study = Study.objects.create(name="bench", design="paired", pool=pool, case_count=cases + 1, seed=1, blank_ms=BLANK_MS, is_open=True)
    study.generators.set([generator])
    prepare(study)
    for name in ("prefetch", "noprefetch"):
        user = User.objects.create_user(name, password="pw-" + name)
        Profile.objects.create(user=user, role="reader")
        study.assign(user)
    print(study.pk)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def read(browser, url: str, study: int, username: str, cases: int, prefetch: bool, read_ms: int) -> list[float]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(f"{url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.add_init_script(TIMING + ("" if prefetch else "window.readerPrefetching = false;"))
    page.goto(f"{url}/studies/{study}/read/")
    page.wait_for_selector("#reader.shown")
    for k in range(1, cases + 1):
        page.wait_for_timeout(read_ms)  # the reader looks at the case (and the next one is fetched meanwhile)
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
        page.wait_for_function("(k) => window.__bench.times.length >= k", arg=k, timeout=30000)
    times = page.evaluate("() => window.__bench.times")
    context.close()
    return times


def run(browser_factory, cases: int, size: int, read_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-case-change-") as folder:
        var = Path(folder)
        env = {**os.environ, "READERSTUDY_VAR_DIR": str(var), "DEBUG": "true", "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        print(f"\nbuilding a paired study of {cases + 1} cases ({size}x{size} 16-bit) in {folder} ...", flush=True)
        built = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.case_change import build_site; "
             f"from pathlib import Path; build_site(Path({str(var)!r}), {cases}, {size})"],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )
        study = int(built.stdout.strip().splitlines()[-1])
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            browser = browser_factory()
            results = {
                "with prefetch": read(browser, url, study, "prefetch", cases, prefetch=True, read_ms=read_ms),
                "without prefetch": read(browser, url, study, "noprefetch", cases, prefetch=False, read_ms=read_ms),
            }
            browser.close()
        finally:
            server.terminate()
            server.wait()
    print(f"case change, Enter to both images drawn, {cases} cases of {size}x{size} 16-bit pairs, 1920x1080 viewport, {read_ms} ms reading each, neutral screen {BLANK_MS} ms (the baseline)")
    print(f"{'':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p50/blank':>10} {'p95-blank':>10}")
    for name, times in results.items():
        p50, p95 = percentile(times, 50), percentile(times, 95)
        print(f"{name:<20} {p50:8.1f} {p95:8.1f} {max(times):8.1f} {p50 / BLANK_MS:10.3f} {p95 - BLANK_MS:+10.1f}")
    p95 = percentile(results["with prefetch"], 95)
    print(f"goal p95 <= neutral screen + 100 ms with prefetch: {'met' if p95 <= BLANK_MS + 100 else 'NOT met'} ({p95:.1f} ms)")
