"""One case as the reading page shows it: the same description for the first page load and for
every case swapped in afterwards (as JSON), for a reader and for a coordinator's preview.

Blinding: a description holds opaque image URLs in display order, the progress, the questions
and the time left; never the truth, the source or anything derived from them. The next case's
image URLs travel with it so the page can fetch them ahead, both at once, in display order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property

from django.template.loader import render_to_string
from django.urls import reverse

from readerstudy.reading.instructions import CONFIDENCE_ANCHORS, question_keys
from readerstudy.studies.models import Design, Phase, ServedImage, Slot, Study


def image_urls(slot: Slot) -> list[str]:
    """The URLs of a slot's images in display order (the one place image URLs are made).

    A reader's URLs are tokens of their own assignment (ServedImage): the same image gets
    another URL in another study and for another reader, so neither the URL nor the browser
    cache can link its appearances. A coordinator's preview has no assignment row and uses
    each image's own token, which only coordinators may fetch.
    """
    images = slot.images_in_display_order()
    if slot.assignment.pk is None:
        return [reverse("image", args=[image.token]) for image in images]
    return [reverse("image", args=[token]) for token in ServedImage.tokens_for(slot.assignment, images)]


@dataclass
class CaseView:
    """Everything the page needs to show one slot."""

    study: Study
    slot: Slot
    done: int
    total: int
    answer_url: str
    back_url: str = ""
    prefetch: tuple[str, ...] = ()
    previous: dict | None = None  # question key -> (answer, confidence) of the latest reading, when revising
    seconds_left_estimate: int | None = None
    preview: bool = False

    @property
    def practice_count(self) -> int:
        return self.study.practice_case_count

    @property
    def is_practice(self) -> bool:
        return self.slot.case.is_practice

    @cached_property
    def questions(self) -> tuple[str | None, list]:
        """Slot.questions_to_ask, asked once per view."""
        return self.slot.questions_to_ask()

    @property
    def reader_design(self) -> str:
        """What the page asks: "grade" (a grading block: its further questions alone, never a word of
        synthetic images), "paired" or "mixed". Also the page's layout class and key set."""
        if self.questions[0] is None:
            return "grade"
        return "paired" if self.study.design == Design.PAIRED else "mixed"

    @property
    def block_start(self) -> int:
        """Slots before this slot's block: a grade-then-reveal study's reveal counts its own cases."""
        return self.study.case_count if self.slot.phase == Phase.REVEAL else 0

    @property
    def number(self) -> int:
        if self.slot.phase in (Phase.GRADE, Phase.REVEAL):
            return self.slot.position - self.block_start
        return self.slot.position if self.is_practice else self.slot.position - self.practice_count

    @property
    def count(self) -> int:
        if self.slot.phase in (Phase.GRADE, Phase.REVEAL):
            return self.study.case_count
        return self.practice_count if self.is_practice else self.total - self.practice_count

    @property
    def block_progress(self) -> tuple[int, int]:
        """(done, total) for the progress bar: the block's own cases in a grade-then-reveal study."""
        if self.slot.phase in (Phase.GRADE, Phase.REVEAL):
            return min(max(self.done - self.block_start, 0), self.study.case_count), self.study.case_count
        return self.done, self.total

    @property
    def progress_text(self) -> str:
        return f"{'Practice' if self.is_practice else 'Case'} {self.number} of {self.count}"

    @property
    def percent(self) -> int:
        done, total = self.block_progress
        return round(100 * done / total) if total else 0

    @cached_property
    def panes(self) -> list[dict]:
        urls = image_urls(self.slot)
        labels = ["Left", "Right"] if self.study.design == Design.PAIRED else ["Image"]
        return [{"url": url, "label": label} for url, label in zip(urls, labels)]

    def fields_context(self) -> dict:
        main, further = self.questions
        previous = self.previous or {}
        return {
            "study": self.study,
            "main": main,
            "previous": previous.get(main, ("", None)),
            "questions": [
                {"question": q, "letter": letter, "keys": keys, "previous": previous.get(q.key, ("", None))[0]}
                for q, letter, keys in question_keys(further)
            ],
            "anchors": CONFIDENCE_ANCHORS,
            "back_url": self.back_url,
        }

    def fields_html(self) -> str:
        return render_to_string("reading/_answer_fields.html", self.fields_context())

    def describe(self) -> dict:
        """The case as JSON for the page: nothing here depends on the source of an image."""
        return {
            "kind": "case",
            "position": self.slot.position,
            "practice": self.is_practice,
            "progress_text": self.progress_text,
            "reader_design": self.reader_design,
            "done": self.block_progress[0],
            "total": self.block_progress[1],
            "percent": self.percent,
            "seconds_left_estimate": self.seconds_left_estimate,
            "images": [pane["url"] for pane in self.panes],
            "prefetch": list(self.prefetch),
            "answer_url": self.answer_url,
            # A fresh key for this showing; a retried or double-clicked submit repeats it.
            "idempotency_key": str(uuid.uuid4()),
            "time_limit": self.study.time_limit_seconds,
            "seconds_to_deadline": self.seconds_to_deadline(),
            "back_url": self.back_url,
            "fields_html": self.fields_html(),
            "preview": self.preview,
        }

    def seconds_to_deadline(self) -> float | None:
        if self.preview:  # nothing is stored in a preview, so the full limit each time
            return float(self.study.time_limit_seconds) if self.study.time_limit_seconds else None
        return self.slot.seconds_to_deadline()
