"""The machine reader on a study's own images, beside the human readers.

`compute_machine_reading(study)` reads the study's scored cases (practice cases are left
out, as in every analysis) with `generator.machine_reader.machine_read`: the same real and
synthetic presentation images the readers saw, at full bit depth. The result is stored in
`MachineReading`, keyed by a hash of what was read (each case's real and synthetic pixel
hashes), so a study whose images changed (rebuilt, redrawn) shows its reading as stale
rather than wrong. It runs after preparation, from `python manage.py machine_read STUDY`
or a background job (never inside a page request: it trains classifiers).

- `machine_summary(study)`: AUC, interval, method, driver, n (and, in a paired design, the
  machine's paired accuracy: how often the synthetic image of a case scored above its real
  partner, the machine's answer to "which image is synthetic?"), or None.
- `machine_scores(study)`: case number (as in the tidy CSV) -> the held-out probability
  that the case's synthetic image is synthetic (mixed design: the case's one image, real or
  synthetic), or None when there is no current reading. Higher: the machine was less
  fooled by that case.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from readerstudy.analysis.models import MachineReading
from readerstudy.studies.models import Design, Study

READER_VERSION = "1"  # bump when generator.machine_reader changes what it computes: cached readings go stale


def _scored_cases(study: Study) -> list:
    return list(study.cases.filter(is_practice=False).select_related("real_image", "synthetic_image").order_by("index"))


def images_sha256(study: Study, cases: list | None = None) -> str:
    """What the machine reads: each scored case's number and its images' pixel hashes."""
    cases = _scored_cases(study) if cases is None else cases
    content = [READER_VERSION] + [
        [case.index + 1, case.real_image.pixel_sha256 if case.real_image_id else None,
         case.synthetic_image.pixel_sha256 if case.synthetic_image_id else None]
        for case in cases
    ]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def _pixels(image) -> np.ndarray:
    levels = image.read_levels()
    return levels.astype(np.float32) / (255.0 if levels.dtype == np.uint8 else 65535.0)


def compute_machine_reading(study: Study, *, steps: int = 300, learned: bool = True, seed: int = 0) -> MachineReading:
    """Read the study's scored images and store the result (replacing an older reading)."""
    from generator.machine_reader import machine_read

    cases = _scored_cases(study)
    if any(not case.is_ready for case in cases):
        raise ValueError(f"{study}: synthetic images are still being generated; read them after preparation")
    real, synthetic = [], []  # (case number, pixels)
    for case in cases:
        if case.real_image_id:
            real.append((case.index + 1, _pixels(case.real_image)))
        if case.synthetic_image_id:
            synthetic.append((case.index + 1, _pixels(case.synthetic_image)))
    if len(real) < 2 or len(synthetic) < 2:
        raise ValueError(f"{study}: the machine reader needs at least 2 real and 2 synthetic images, "
                         f"the study has {len(real)} and {len(synthetic)}")
    reading = machine_read(np.stack([p for _, p in real]), np.stack([p for _, p in synthetic]), steps=steps,
                           learned=learned, seed=seed)
    figures = dict(reading.figures)
    real_by_case = {number: float(s) for (number, _), s in zip(real, reading.real_scores)}
    synthetic_by_case = {number: float(s) for (number, _), s in zip(synthetic, reading.synthetic_scores)}
    if study.design == Design.PAIRED:
        wins = [1.0 if synthetic_by_case[n] > real_by_case[n] else 0.5 if synthetic_by_case[n] == real_by_case[n] else 0.0
                for n in synthetic_by_case if n in real_by_case]
        figures["paired_accuracy"] = float(np.mean(wins)) if wins else None
        figures["paired_n"] = len(wins)
        case_scores = synthetic_by_case
    else:
        case_scores = {**real_by_case, **synthetic_by_case}
    return MachineReading.objects.update_or_create(
        study=study,
        defaults={"images_sha256": images_sha256(study, cases), "figures": figures,
                  "case_scores": {str(number): score for number, score in sorted(case_scores.items())}},
    )[0]


def current_reading(study: Study) -> tuple[MachineReading | None, bool]:
    """The stored reading and whether it still describes the study's images."""
    reading = MachineReading.objects.filter(study=study).first()
    if reading is None:
        return None, False
    return reading, reading.images_sha256 == images_sha256(study)


def machine_scores(study: Study) -> dict[int, float] | None:
    """Case number -> held-out P(synthetic) of the case's synthetic image (mixed: its one image)."""
    reading, current = current_reading(study)
    if reading is None or not current:
        return None
    return {int(number): score for number, score in reading.case_scores.items()}


def machine_summary(study: Study) -> dict | None:
    """The headline for the report (full precision), with `current` False when the images changed since."""
    reading, current = current_reading(study)
    if reading is None:
        return None
    f = reading.figures
    keys = ("auc", "ci", "level", "method", "method_description", "driver", "driver_description", "n_real",
            "n_synthetic", "resolution", "paired_accuracy", "paired_n")
    return {**{k: f.get(k) for k in keys}, "current": current, "computed_at": reading.computed_at.isoformat(),
            "methods": [{k: m[k] for k in ("method", "description", "auc", "ci")} for m in f["methods"]],
            "top_statistics": [{k: s[k] for k in ("statistic", "description", "auc", "ci", "direction")}
                               for s in f["statistics"][:3]]}
