"""Check that a study can be rebuilt exactly from its stored seeds."""

from __future__ import annotations

from itertools import groupby

from readerstudy.archive.encoding import pixel_sha256
from readerstudy.studies.generation import passed_screen, sample_request, sample_screened, sampler_for
from readerstudy.studies.models import Study


def rebuild_differences(study: Study, check_pixels: bool = True) -> list[str]:
    """Redraw cases, reader orders and sides, and resample synthetic pixels; list what differs."""
    differences = []
    stored = {c.index: c for c in study.cases.select_related("synthetic_image", "generator")}
    for planned in study.draw():
        case = stored.get(planned["index"])
        found = None if case is None else {key: getattr(case, key) for key in planned}
        if found != planned:
            differences.append(f"case {planned['index'] + 1}: stored {found}, redrawn {planned}")
    for assignment in study.assignments.select_related("reader"):
        if assignment.seed != study.reader_seed(assignment.reader):
            differences.append(f"{assignment.reader}: seed differs from the one the study derives")
        laid = [(s.case.index, s.synthetic_side) for s in assignment.slots.select_related("case").order_by("position")]
        if laid != assignment.plan():
            differences.append(f"{assignment.reader}: stored order or sides differ from the redrawn plan")
    if check_pixels:
        synthetic = sorted((c for c in stored.values() if c.synthetic_image is not None), key=lambda c: (c.generator_id, c.index))
        for generator, cases in groupby(synthetic, key=lambda case: case.generator):
            differences += _resample_differences(study, generator, list(cases))
    return differences


def _resample_differences(study: Study, generator, cases: list) -> list[str]:
    """Every refused candidate must be refused again, and the stored one made again, pixel for pixel."""
    from generator.sampling import replacement_seed

    attempts = [(case, attempt) for case in cases for attempt in range(case.privacy_refusals + 1)]
    requests = [sample_request(generator, study, replacement_seed(c.synthetic_seed, a), c.synthetic_label) for c, a in attempts]
    results = sample_screened(sampler_for(generator, study.pool.presentation_size), requests)
    differences = []
    for (case, attempt), result in zip(attempts, results):
        if attempt < case.privacy_refusals:
            if passed_screen(result):
                differences.append(f"case {case.index + 1}: candidate {attempt + 1} now passes the privacy screen")
        elif not passed_screen(result):
            differences.append(f"case {case.index + 1}: the stored image's candidate is now refused by the privacy screen")
        else:
            levels = study.pool.present_sample(result)
            if pixel_sha256(levels) != case.synthetic_image.pixel_sha256:
                apart = _grey_levels_apart(levels, case.synthetic_image)
                differences.append(f"case {case.index + 1}: resampled synthetic pixels differ from the stored image "
                                   f"(up to {apart:.2f} grey levels of 255)")
    return differences


def _grey_levels_apart(levels, image) -> float:
    """Largest pixel difference in 8-bit grey levels (a batched GPU run may differ by up to one)."""
    import numpy as np

    stored = image.read_levels().astype(np.float64)
    top = (1 << image.bit_depth) - 1
    if stored.shape != levels.shape:
        return 255.0
    return float(np.abs(stored - levels.astype(np.float64)).max() * 255 / top)
