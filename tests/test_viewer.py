"""The reading page's image viewer in Debian's Chromium.

Every check is made on the canvas pixels or on the stored answer: window/level, zoom, pan,
invert and pane linking must change what is drawn, 16-bit images must keep their bit depth,
and the answer must record the viewer state and tool use. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from readerstudy.archive.encoding import encode_png
from readerstudy.studies.models import Answer
from tests.browsing import launch, log_in, require_chromium, screenshot

ROOT = Path(__file__).resolve().parent.parent

require_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def open_study(browser, live_server, username: str, study, viewport=(1280, 800)):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = log_in(context, live_server, username)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    page.wait_for_selector("#reader.shown")
    return context, page


def drawn(page, pane: int) -> dict:
    """A digest of what a pane's canvas shows, and the gray level at its centre."""
    return page.evaluate(
        """(i) => {
            const c = document.querySelectorAll('.pane canvas')[i];
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let hash = 2166136261, sum = 0, min = 255, max = 0;
            for (let k = 0; k < d.length; k += 4) {
                hash = Math.imul(hash ^ d[k], 16777619);
                sum += d[k]; min = Math.min(min, d[k]); max = Math.max(max, d[k]);
            }
            const centre = ((c.height >> 1) * c.width + (c.width >> 1)) * 4;
            return {hash: hash >>> 0, mean: sum / (d.length / 4), centre: d[centre], contrast: max - min};
        }""",
        pane,
    )


def pane_centre(page, pane: int) -> tuple[float, float]:
    box = page.locator(".pane canvas").nth(pane).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page, pane: int, dx: float, dy: float, button: str = "left") -> None:
    x, y = pane_centre(page, pane)
    page.mouse.move(x, y)
    page.mouse.down(button=button)
    page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up(button=button)
    settle(page)


def settle(page) -> None:
    """Wait for the viewer's coalesced render to run."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def state(page) -> dict:
    return page.evaluate("() => readerViewers.state()")


def stored(study, username: str, position: int) -> Answer:
    return Answer.objects.get(slot__assignment__study=study, slot__assignment__reader__username=username, slot__position=position)


def test_paired_viewer_links_panes_and_records_a_keyboard_reading(browser, live_server, make_study):
    study = make_study("paired", cases=2)
    context, page = open_study(browser, live_server, "rad", study)

    # Both panes are built the same way: their markup differs only in the opaque URL and the label.
    panes = page.eval_on_selector_all(".pane", "ps => ps.map((p) => p.outerHTML.replace(/data-src=\"[^\"]*\"/, '').replace(/Left|Right/g, 'X'))")
    assert panes[0] == panes[1]

    # The panes have their size before the images arrive: nothing on the page moved.
    assert page.evaluate("() => PerformanceObserver.supportedEntryTypes.includes('layout-shift')")
    shifts = page.evaluate(
        """() => new Promise((done) => {
            new PerformanceObserver((list) => done(list.getEntries().map((e) => e.value))).observe({type: 'layout-shift', buffered: true});
            setTimeout(() => done([]), 200);
        })"""
    )
    assert sum(shifts) == 0

    # 16-bit images keep their depth. The tiny pool's grid is 16 levels (32 x 32 pixels, one
    # level per 64: readerstudy/archive/encoding.py), and the viewer sees nearly all of them.
    for pane in (0, 1):
        stats = page.evaluate("(i) => readerViewers.stats(i)", pane)
        assert stats["bitDepth"] == 16 and stats["distinct"] >= 14, stats
        assert drawn(page, pane)["contrast"] > 40

    # Linked (the default): a window/level drag on the left redraws both panes with one window.
    assert page.locator(".link-state").inner_text() == "Linked"
    before = [drawn(page, 0), drawn(page, 1)]
    drag(page, 0, 90, -40, button="right")
    after = [drawn(page, 0), drawn(page, 1)]
    assert after[0]["hash"] != before[0]["hash"] and after[1]["hash"] != before[1]["hash"]
    left, right = state(page)["panes"]
    assert (left["window_center"], left["window_width"]) == (right["window_center"], right["window_width"])
    screenshot(page, "viewer-paired")

    # Unlinked with K: the indicator says so, and a drag on the left leaves the right as it was.
    page.keyboard.press("k")
    assert page.locator(".link-state").inner_text() == "Unlinked"
    assert page.locator(".panes.unlinked .pane.active").count() == 1
    before = after
    drag(page, 0, -60, 50, button="right")
    after = [drawn(page, 0), drawn(page, 1)]
    assert after[0]["hash"] != before[0]["hash"] and after[1]["hash"] == before[1]["hash"]

    # Shift+drag is window/level too; a plain drag pans; the wheel zooms the pane under the pointer.
    x, y = pane_centre(page, 0)
    page.keyboard.down("Shift")
    drag(page, 0, 30, 0)
    page.keyboard.up("Shift")
    assert state(page)["tools"]["window_level"] == 3
    before = after
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)
    settle(page)
    after = [drawn(page, 0), drawn(page, 1)]
    assert after[0]["hash"] != before[0]["hash"] and after[1]["hash"] == before[1]["hash"]
    zooms = [pane["zoom"] for pane in state(page)["panes"]]
    assert zooms[0] > 1 and zooms[1] == 1
    drag(page, 0, 40, 25)
    assert drawn(page, 0)["hash"] != after[0]["hash"]

    # Invert maps every gray level g to 255 - g (the centre pixel is inside the image).
    page.keyboard.press("=")
    settle(page)
    plain = drawn(page, 0)["centre"]
    page.keyboard.press("i")
    settle(page)
    assert drawn(page, 0)["centre"] == 255 - plain

    # Relinking copies the active pane's view to the other.
    page.keyboard.press("k")
    settle(page)
    left, right = state(page)["panes"]
    assert left == right
    before = [drawn(page, 0), drawn(page, 1)]
    drag(page, 1, 0, 30, button="right")  # linked again: a drag on the right redraws both
    after = [drawn(page, 0), drawn(page, 1)]
    assert after[0]["hash"] != before[0]["hash"] and after[1]["hash"] != before[1]["hash"]

    # The help overlay opens on ? and closes on Escape.
    page.keyboard.press("?")
    page.wait_for_selector(".viewer-help:not([hidden])")
    assert page.locator(".viewer-help").inner_text().count("Full screen") == 1
    screenshot(page, "viewer-help")
    page.keyboard.press("Escape")
    page.wait_for_selector(".viewer-help", state="hidden")

    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Case 2 of 2")
    page.wait_for_selector("#reader.shown")
    first = stored(study, "rad", 1).client["viewer"]
    assert first["linked"] is True and first["panes"][0]["invert"] is True
    assert first["tools"] == {
        "window_level": 4, "zoom": 1, "pan": 1, "invert": 1, "preset": 0, "reset": 0, "fit": 1, "one_to_one": 0,
        "link": 2, "loupe": 0, "fullscreen": 0, "help": 1,
    }

    # Case 2 is swapped into the same page: link state and invert carry over, the view starts fitted.
    carried = state(page)
    assert carried["linked"] is True and all(p["invert"] and p["zoom"] == 1 for p in carried["panes"])

    # Case 2 with the keyboard only. Stray keys and an Enter before an answer submit nothing.
    page.keyboard.press("x")
    page.keyboard.press("Enter")
    page.keyboard.press("8")  # Soft preset, both panes (linked)
    page.keyboard.press("i")
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.keyboard.press("k")  # unlink: the next keys act on the active (left) pane only
    page.keyboard.press("w")  # Soft -> Bone
    page.keyboard.down("z")
    page.wait_for_selector(".loupe:not([hidden])")
    page.keyboard.up("z")
    page.wait_for_selector(".loupe", state="hidden")
    page.keyboard.press("?")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    settle(page)
    assert Answer.objects.filter(slot__assignment__study=study).count() == 1
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    answer = stored(study, "rad", 2)
    assert answer.answer == "left"
    viewer = answer.client["viewer"]
    assert viewer["linked"] is False
    left, right = viewer["panes"]
    assert (left["preset"], right["preset"]) == ("bone", "soft")
    assert not left["invert"] and not right["invert"]  # carried over inverted, then I pressed once
    assert left["zoom"] == right["zoom"] == pytest.approx(1.5625)
    assert set(left) == {"window_center", "window_width", "zoom", "pixel_scale", "pan", "invert", "preset"}
    assert viewer["tools"] == {
        "window_level": 0, "zoom": 2, "pan": 0, "invert": 1, "preset": 2, "reset": 0, "fit": 0, "one_to_one": 0,
        "link": 1, "loupe": 1, "fullscreen": 0, "help": 1,
    }
    context.close()


def test_mixed_viewer_with_the_mouse_only(browser, live_server, make_study):
    study = make_study("mixed", cases=2)
    context, page = open_study(browser, live_server, "ortho", study)
    assert page.locator("[data-viewer-action=link]").count() == 0  # one pane: nothing to link
    stats = page.evaluate("() => readerViewers.stats(0)")
    assert stats["bitDepth"] == 16 and stats["distinct"] >= 14  # the tiny pool's 16-level grid (see above)

    start = drawn(page, 0)
    page.click("[data-preset=bone]")
    settle(page)
    bone = drawn(page, 0)
    assert bone["hash"] != start["hash"]
    assert page.get_attribute("[data-preset=bone]", "aria-pressed") == "true"
    drag(page, 0, 70, 30, button="right")
    assert drawn(page, 0)["hash"] != bone["hash"]
    x, y = pane_centre(page, 0)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -400)
    settle(page)
    zoomed = drawn(page, 0)
    drag(page, 0, -50, -20)
    panned = drawn(page, 0)
    assert panned["hash"] != zoomed["hash"]
    page.click("[data-viewer-action=invert]")
    settle(page)
    assert drawn(page, 0)["mean"] != panned["mean"]

    # The loupe shows the stored 16-bit value of the pixel under the pointer.
    page.click("[data-viewer-action=loupe]")
    page.mouse.move(x + 5, y + 5)
    page.wait_for_selector(".loupe:not([hidden])")
    label = page.locator(".loupe span").inner_text()
    value, _, where = label.removeprefix("value ").partition(" at ")
    px, py = (int(v) for v in where.split(", "))
    assert int(value) == page.evaluate("([x, y]) => readerViewers.valueAt(0, x, y)", [px, py])

    # Full screen holds the whole reader (images, tools and answer bar); a second click leaves it.
    page.click("[data-viewer-action=fullscreen]")
    page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.id === 'reader'")
    settle(page)
    assert drawn(page, 0)["contrast"] > 40
    page.click("[data-viewer-action=fullscreen]")
    page.wait_for_function("() => !document.fullscreenElement")

    page.click("label.choice:has(input[value=synthetic])")
    assert page.is_disabled("#submit")
    page.click("label.choice:has(input[name=confidence][value='3'])")
    screenshot(page, "viewer-mixed")
    page.click("#submit")
    page.wait_for_selector("text=Case 2 of 2")
    page.wait_for_selector("#reader.shown")

    viewer = stored(study, "ortho", 1).client["viewer"]
    assert viewer["linked"] is None and len(viewer["panes"]) == 1
    pane = viewer["panes"][0]
    assert pane["invert"] is True and pane["zoom"] > 1 and pane["preset"] is None  # dragged off the preset
    assert pane["pan"] != [0.5, 0.5]
    assert viewer["tools"] == {
        "window_level": 1, "zoom": 1, "pan": 1, "invert": 1, "preset": 1, "reset": 0, "fit": 0, "one_to_one": 0,
        "link": 0, "loupe": 1, "fullscreen": 1, "help": 0,
    }

    # A 4K screen: the canvas follows the pane in device pixels and the image fills it.
    page.set_viewport_size({"width": 3840, "height": 2160})
    page.wait_for_function(
        "() => { const c = document.querySelector('.pane canvas'); return c.width === Math.round(c.getBoundingClientRect().width); }"
    )
    settle(page)
    assert drawn(page, 0)["contrast"] > 40
    assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth")
    screenshot(page, "viewer-mixed-4k")

    # The connection drops as the answer is sent: it is kept, retried, and stored once.
    context.set_offline(True)
    page.click("label.choice:has(input[value=real])")
    page.click("label.choice:has(input[name=confidence][value='5'])")
    page.click("#submit")
    page.wait_for_selector("text=Connection lost")
    context.set_offline(False)
    page.wait_for_selector("text=Study complete")
    second = stored(study, "ortho", 2)
    assert (second.answer, second.confidence) == ("real", 5)
    # The window preference carries over: case 1's last preset (Bone, before a custom drag) opens case 2.
    assert second.client["viewer"]["panes"][0]["preset"] == "bone"
    context.close()


def png_with_every_filter(levels: np.ndarray) -> bytes:
    """A grayscale PNG whose rows cycle through all five filter types (Pillow picks its own)."""
    height, width = levels.shape
    bpp = 2 if levels.dtype == np.uint16 else 1
    rows = levels.astype(">u2").view(np.uint8).reshape(height, width * 2) if bpp == 2 else levels
    rows = rows.astype(np.int32)
    raw = bytearray()
    previous = np.zeros(width * bpp, dtype=np.int32)
    for y, row in enumerate(rows):
        kind = y % 5
        left = np.concatenate([np.zeros(bpp, dtype=np.int32), row[:-bpp]])
        upper_left = np.concatenate([np.zeros(bpp, dtype=np.int32), previous[:-bpp]])
        if kind == 0:
            predicted = np.zeros_like(row)
        elif kind == 1:
            predicted = left
        elif kind == 2:
            predicted = previous
        elif kind == 3:
            predicted = (left + previous) // 2
        else:
            p = left + previous - upper_left
            pa, pb, pc = abs(p - left), abs(p - previous), abs(p - upper_left)
            predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, upper_left))
        raw += bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes()
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8 * bpp, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")


def test_png_decoder_returns_the_stored_values(browser):
    rng = np.random.default_rng(7)
    gradient = np.add.outer(np.arange(23), np.arange(37)).astype(np.float64)
    cases = {
        "site-16": encode_png((rng.random((31, 29)) * 65535).astype(np.uint16)),
        "site-8": encode_png((gradient * 3 % 256).astype(np.uint8)),
        "filters-16": png_with_every_filter((gradient * 1500 + rng.integers(0, 400, gradient.shape)).astype(np.uint16)),
        "filters-8": png_with_every_filter(rng.integers(0, 256, (23, 37)).astype(np.uint8)),
    }
    page = browser.new_page()
    page.set_content("<!doctype html><title>decoder</title>")
    page.add_script_tag(path=str(ROOT / "static" / "js" / "png.js"))
    for name, data in cases.items():
        with PILImage.open(io.BytesIO(data)) as image:
            expected = np.asarray(image).astype(np.int64)
        decoded = page.evaluate(
            """async (b64) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const image = await decodeGrayPng(bytes);
                return {width: image.width, height: image.height, bitDepth: image.bitDepth, pixels: Array.from(image.pixels)};
            }""",
            base64.b64encode(data).decode(),
        )
        assert (decoded["height"], decoded["width"]) == expected.shape, name
        assert decoded["bitDepth"] == (16 if name.endswith("16") else 8), name
        assert np.array_equal(np.array(decoded["pixels"]).reshape(expected.shape), expected), name

    # Anything the site's encoder never writes is refused, not guessed at.
    rgb = io.BytesIO()
    PILImage.new("RGB", (4, 4)).save(rgb, format="PNG")
    error = page.evaluate(
        "async (b64) => { try { await decodeGrayPng(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))); return null; } catch (e) { return e.message; } }",
        base64.b64encode(rgb.getvalue()).decode(),
    )
    assert error == "only grayscale PNGs are supported"
    page.close()
