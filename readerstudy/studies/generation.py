"""Synthetic images for a study, made on demand by the generator and cached.

The embedded default runs this in-process (the coordinator's "prepare"
action, the demo command). A distributed queue of GPU workers calls the same
``generate_pending`` for its share of cases.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, transaction

from readerstudy.archive.models import Image, Source
from readerstudy.studies.models import Case, GeneratorCheckpoint, Study

log = logging.getLogger(__name__)
_sampler_lock = threading.Lock()


@lru_cache(maxsize=4)
def _sampler(path: str, sha256: str, device: str):
    from generator.sampling import Sampler

    return Sampler(path, device=None if device == "auto" else device)


def sampler_for(checkpoint: GeneratorCheckpoint):
    from generator.checkpoints import checkpoint_sha256

    path = checkpoint.resolved_path()
    if checkpoint_sha256(path) != checkpoint.sha256:
        raise RuntimeError(f"checkpoint file {path} changed since it was registered as {checkpoint.name}")
    return _sampler(str(path), checkpoint.sha256, settings.GENERATOR_DEVICE)


def generation_key(checkpoint: GeneratorCheckpoint, seed: int, label: int | None, truncation: float) -> str:
    return f"{checkpoint.sha256[:32]}:{seed}:{'' if label is None else label}:{truncation:.4f}"


def generate_pending(study: Study, batch_size: int = 16) -> int:
    """Make every synthetic image the study still lacks; returns how many cases were filled."""
    filled = 0
    while pending := list(study.synthetic_pending().order_by("index")[:batch_size]):
        filled += _fill(study, pending)
    return filled


def _fill(study: Study, cases: list[Case]) -> int:
    from generator.sampling import SampleRequest

    checkpoint = study.generator
    keys = {case.pk: generation_key(checkpoint, case.synthetic_seed, case.synthetic_label, study.truncation) for case in cases}
    cached = {image.generation_key: image for image in Image.objects.filter(pool=study.pool, generation_key__in=keys.values())}
    missing = [case for case in cases if keys[case.pk] not in cached]
    if missing:
        requests = [SampleRequest(seed=c.synthetic_seed, label=c.synthetic_label, truncation=study.truncation) for c in missing]
        with _sampler_lock:  # one forward pass at a time per process
            results = sampler_for(checkpoint).sample(requests)
        for case, result in zip(missing, results):
            origin = {"generator": checkpoint.name, **result.provenance}
            image = Image.build(study.pool, study.pool.present(result.pixels), Source.SYNTHETIC, origin, generation_key=keys[case.pk])
            try:
                with transaction.atomic():
                    image.save()
            except IntegrityError:  # another worker stored the same generation first
                image.delete_file()
                image = Image.objects.get(pool=study.pool, generation_key=keys[case.pk])
            cached[keys[case.pk]] = image
    for case in cases:
        Case.objects.filter(pk=case.pk, synthetic_image__isnull=True).update(synthetic_image=cached[keys[case.pk]])
    log.info("study %s: %d synthetic images ready (%d generated)", study.pk, len(cases), len(missing))
    return len(cases)


def prepare(study: Study) -> None:
    """Draw the cases and make their synthetic images: after this, readers can start."""
    study.build_cases()
    generate_pending(study)
