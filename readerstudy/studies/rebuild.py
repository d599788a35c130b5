"""Check that a study can be rebuilt exactly from its stored seeds."""

from __future__ import annotations

from readerstudy.archive.encoding import pixel_sha256
from readerstudy.studies.generation import sampler_for
from readerstudy.studies.models import Study


def rebuild_differences(study: Study, check_pixels: bool = True) -> list[str]:
    """Redraw cases, reader orders and sides, and resample synthetic pixels; list what differs."""
    differences = []
    stored = {c.index: c for c in study.cases.select_related("synthetic_image")}
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
        from generator.sampling import SampleRequest

        synthetic = [c for c in stored.values() if c.synthetic_image is not None]
        requests = [SampleRequest(seed=c.synthetic_seed, label=c.synthetic_label, truncation=study.truncation) for c in synthetic]
        results = sampler_for(study.generator).sample(requests) if requests else []
        for case, result in zip(synthetic, results):
            if pixel_sha256(study.pool.present(result.pixels)) != case.synthetic_image.pixel_sha256:
                differences.append(f"case {case.index + 1}: resampled synthetic pixels differ from the stored image")
    return differences
