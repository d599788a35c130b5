"""The reading workflow in Chromium: practice feedback, the break screen, a time limit, a grading question."""

from __future__ import annotations

import pytest

from readerstudy.studies.models import Answer, Question
from tests.browsing import logged_in_page, require_chromium, screenshot

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, readers):
    with logged_in_page(live_server, "rad") as page:
        yield page


def test_practice_feedback_then_break(live_server, make_study, page):
    study = make_study("paired", cases=4, practice_case_count=1, break_every=2, blank_ms=200)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    page.wait_for_selector("text=Practice 1 of 1")
    page.wait_for_selector("#reader.shown")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("#feedback:not([hidden])")
    text = page.inner_text("#feedback")
    assert "the synthetic image was on the" in text
    screenshot(page, "practice-feedback")
    page.keyboard.press("Enter")
    for number in (1, 2):
        page.wait_for_selector(f"text=Case {number} of 4")
        page.wait_for_selector("#reader.shown")
        assert page.is_hidden("#feedback")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Time for a break")
    screenshot(page, "break-screen")
    page.click("#continue")
    page.wait_for_selector("text=Case 3 of 4")
    assert Answer.objects.count() == 3


def test_time_limit_hides_images_and_grading_is_recorded(live_server, make_study, page):
    study = make_study("mixed", cases=2, time_limit_seconds=1, blank_ms=0)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    page.wait_for_selector("#reader.shown")
    page.wait_for_selector("text=Time is up")
    assert page.evaluate("getComputedStyle(document.querySelector('.pane canvas')).visibility") == "hidden"
    page.keyboard.press("s")
    page.keyboard.press("4")
    assert page.is_disabled("#submit")  # the grade is still missing
    page.click("label.choice:has(input[name=q-kl_grade][value='3'])")
    screenshot(page, "mixed-with-grading")
    page.click("#submit")
    page.wait_for_selector("text=Case 2 of 2")
    stored = {a.question: a for a in Answer.objects.all()}
    assert stored["kl_grade"].answer == "3"
    assert stored["real_or_synthetic"].client["timed_out"] is True


def record_image_responses(page) -> list:
    seen = []

    def record(response):
        if "/img/" in response.url:
            request = response.request
            seen.append((response.url, response.body(), response.all_headers(), request.method, request.all_headers()))

    page.on("response", record)
    return seen


def request_shapes(seen: list, source_of) -> dict[str, set]:
    """What the network panel shows of each image, by source, less what the pixels decide.

    The body must be exactly what encoding the image's pixels gives: its size then says
    nothing the pixels do not."""
    from readerstudy.archive.encoding import encode_png
    from readerstudy.studies.models import ServedImage

    shapes = {}
    for url, body, headers, method, request_headers in seen:
        image = ServedImage.objects.select_related("image").get(token=url.rsplit("/", 1)[1]).image
        assert body == encode_png(image.read_levels())
        headers = {k: v for k, v in headers.items() if k not in ("date", "content-length")}
        request_headers = {k: v for k, v in request_headers.items() if k != "cookie"}
        shapes.setdefault(source_of(image), set()).add(
            (method, tuple(sorted(headers.items())), tuple(sorted(request_headers.items())))
        )
    return shapes


def test_browser_sees_the_same_requests_and_headers_for_both_sources(live_server, make_study, page):
    """What the network panel shows differs by source only as the pixels imply."""
    study = make_study("paired", cases=4, blank_ms=0)
    seen = record_image_responses(page)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    for number in range(1, 5):
        page.wait_for_selector(f"text=Case {number} of 4")
        page.wait_for_selector("#reader.shown")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    assert len(seen) == 8
    shapes = request_shapes(seen, lambda image: image.source)
    assert shapes["real"] == shapes["synthetic"] and len(shapes["real"]) == 1


def test_every_kind_of_source_looks_the_same_on_the_wire(live_server, pool, checkpoint, readers, page, tmp_path):
    """A GAN, a bring-your-own ONNX model and the CT renderer in one mixed study: the requests
    and responses of their images and of the real ones differ only as the pixels imply."""
    from readerstudy.studies.generation import prepare
    from readerstudy.studies.models import Generator, Study
    from tests.synthetic import write_onnx_generator, write_phantom_ct

    onnx_file = write_onnx_generator(tmp_path / "own.onnx", conditional=False, size=32)
    own = Generator.objects.create(name="own", kind="onnx", path=str(onnx_file))
    ct = Generator.objects.create(name="ct", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz")))
    study = Study.objects.create(name="three", design="mixed", pool=pool, case_count=6, seed=8, blank_ms=0, is_open=True)
    study.generators.set([checkpoint, own, ct])
    prepare(study)
    study.assign(readers[0])
    seen = record_image_responses(page)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    for number in range(1, 7):
        page.wait_for_selector(f"text=Case {number} of 6")
        page.wait_for_selector("#reader.shown")
        for key in ("R", "3", "Enter"):
            page.keyboard.press(key)
    page.wait_for_selector("text=Study complete")
    shapes = request_shapes(seen, lambda image: image.origin.get("generator", "real"))
    assert set(shapes) == {"real", "tiny", "own", "ct"}
    assert len(set.union(*shapes.values())) == 1
