"""How fast the reading page's viewer redraws while the reader drags window/level, and how
fast the reading page changes case.

Run: .venv/bin/python bench/bench_viewer.py [--frames N] [--cases N] [--size PX] [--read-ms MS] [--skip-frames] [--skip-case-change]

Case change (bench/case_change.py): Enter to both images of the next case drawn, p50 and p95 over
--cases cases of a paired study served by the local Django server, with and without prefetching
the next case; the baseline is the study's neutral screen (500 ms), which every case change
includes by design. Goal: p95 within neutral screen + 100 ms with prefetch.

Serves bench/viewer_page.html, the site's static files and a generated 2048x2048 16-bit PNG
from 127.0.0.1, then drives headless Debian Chromium. Each frame is one window (or pan) step,
its render and a 1x1 read-back that forces the canvas to finish drawing. The baseline, measured
in the same run, is a plain drawImage of the 8-bit version of the image into the same canvas.
Target: a window/level frame under 16 ms.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from readerstudy.archive.encoding import encode_png  # noqa: E402  (the site's own encoder)

SIZE = 2048
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def radiograph_like(size: int, seed: int = 0) -> np.ndarray:
    """Smooth anatomy-like structure plus fine noise, in [0, 1]: realistic entropy for the PNG."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((12, 12)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    y, x = np.mgrid[0:size, 0:size] / size
    bone = np.exp(-(((x - 0.5) / 0.08) ** 2)) * (0.6 + 0.4 * np.sin(y * 9))
    pixels = 0.5 * smooth + 0.4 * bone + rng.normal(0, 0.01, (size, size))
    return np.clip((pixels - pixels.min()) / (pixels.max() - pixels.min()), 0, 1)


def images() -> dict[str, bytes]:
    pixels = radiograph_like(SIZE)
    return {
        "/image16.png": encode_png(np.rint(pixels * 65535).astype(np.uint16)),
        "/image8.png": encode_png(np.rint(pixels * 255).astype(np.uint8)),
    }


class Handler(SimpleHTTPRequestHandler):
    """The site's static folder, the bench page at / and the generated images."""

    blobs: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path in self.blobs:
            return self.send_bytes(self.blobs[self.path], "image/png")
        if self.path == "/":
            return self.send_bytes((ROOT / "bench" / "viewer_page.html").read_bytes(), "text/html; charset=utf-8")
        if self.path.startswith("/static/"):
            return super().do_GET()
        self.send_error(404)

    def send_bytes(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def serve() -> ThreadingHTTPServer:
    Handler.blobs = images()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(ROOT)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def row(name: str, result: dict, baseline: dict | None = None) -> str:
    ratio = f"{result['median'] / baseline['median']:7.2f}x" if baseline else " " * 8
    return f"{name:<44} {result['median']:8.2f} {result['p95']:8.2f} {result['max']:8.2f} {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="timed frames per scenario (after 10 warm-up frames)")
    parser.add_argument("--cases", type=int, default=50, help="case changes timed per reader")
    parser.add_argument("--size", type=int, default=1024, help="presentation size of the case-change study's images")
    parser.add_argument("--read-ms", type=int, default=1500, help="how long the simulated reader looks at each case before answering")
    parser.add_argument("--skip-frames", action="store_true", help="only the case change")
    parser.add_argument("--skip-case-change", action="store_true", help="only the window/level frames")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print("Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    if not args.skip_frames:
        frames(args)
    if not args.skip_case_change:
        from bench.case_change import run

        with sync_playwright() as playwright:
            run(lambda: playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS), args.cases, args.size, args.read_ms)
    return 0


def frames(args) -> None:
    from playwright.sync_api import sync_playwright

    server = serve()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 2200, "height": 2200}, device_scale_factor=1)
            page.goto(url)
            info = page.evaluate("() => bench.prepare()")
            n = args.frames
            print(f"image: {info['width']}x{info['height']} {info['bitDepth']}-bit PNG, decoded in JS in {info['decodeMs']:.0f} ms")
            print(f"{n} frames per scenario, headless Chromium (--disable-gpu), device pixel ratio 1\n")
            print(f"{'frame time, ms':<44} {'median':>8} {'p95':>8} {'max':>8} {'vs base':>8}")
            for size in (1024, 2048):
                base = page.evaluate("([s, n]) => bench.baseline(s, n)", [size, n])
                print(row(f"baseline: drawImage 8-bit, {size}px canvas", base))
                wl = page.evaluate("([s, n]) => bench.drag('window', 1, s, n)", [size, n])
                print(row(f"window/level drag, 1 pane {size}px", wl, base))
                if size == 1024:
                    linked = page.evaluate("([s, n]) => bench.drag('window', 2, s, n)", [size, n])
                    print(row(f"window/level drag, 2 linked panes {size}px", linked, base))
                    pan = page.evaluate("([s, n]) => bench.drag('pan', 1, s, n)", [size, n])
                    print(row(f"pan drag (resample), 1 pane {size}px", pan, base))
            paced = page.evaluate("([s, n]) => bench.paced(2, s, n)", [1024, n])
            print(f"\nrequestAnimationFrame-paced W/L drag, 2 linked 1024px panes: gap between frames "
                  f"median {paced['median']:.1f} ms, p95 {paced['p95']:.1f} ms, max {paced['max']:.1f} ms (16.7 = every frame)")
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
