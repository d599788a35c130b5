"""Synthetic images for a study, made on demand by its generators and cached.

The embedded default runs this in-process (the coordinator's "prepare"
action, the demo command). A distributed queue of GPU workers calls the same
``generate_pending`` for its share of cases.

Privacy: a generator registered with a privacy screen has every candidate
checked; a refused candidate is never stored, and the case moves on to the
next seed of a fixed sequence (generator.sampling.replacement_seed). The case
records how many were refused, so the stored image can be rebuilt and the
report can say how many candidates the screen turned away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import lru_cache
from itertools import groupby

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Mod

from readerstudy.archive.models import Image, Source
from readerstudy.studies.models import Case, Generator, Study

log = logging.getLogger(__name__)
_sampler_lock = threading.Lock()

# A generator that needs more replacements than this for one case is copying its
# training set (or its screen is miscalibrated): stop and tell the coordinator.
MAX_PRIVACY_REFUSALS = 20


class GenerationError(RuntimeError):
    """Synthetic images cannot be made as registered; the message says why."""


@lru_cache(maxsize=8)
def _sampler(kind: str, path: str, sha256: str, privacy_screen: str, size: int, device: str):
    from generator import sources

    return sources.open_sampler(kind, path, size=size, device=None if device == "auto" else device,
                                privacy_screen=privacy_screen or None)


def sampler_for(generator: Generator, size: int):
    """A sampler for the generator at the pool's presentation size, refusing files changed since registration."""
    from generator import sources
    from generator.checkpoints import checkpoint_sha256

    try:
        path, screen = generator.resolved_path(), generator.resolved_privacy_screen()
        path_sha256 = sources.fingerprint(generator.kind, path)
        screen_sha256 = checkpoint_sha256(screen) if screen else ""
    except FileNotFoundError as error:
        raise GenerationError(f"generator {generator.name}: {error}") from error
    if path_sha256 != generator.sha256:
        raise GenerationError(f"{path} changed since it was registered as generator {generator.name}")
    if screen_sha256 != generator.privacy_sha256:
        raise GenerationError(f"{screen} changed since it was registered as {generator.name}'s privacy screen")
    return _sampler(generator.kind, str(path), generator.sha256, str(screen or ""), size, settings.GENERATOR_DEVICE)


def generation_key(generator: Generator, seed: int, label: int | None, truncation: float) -> str:
    """What makes a synthetic image: the same key in a pool means the same pixels."""
    made_by = generator.sha256[:32] + (f"+{generator.privacy_sha256[:8]}" if generator.privacy_sha256 else "")
    if generator.kind == Generator.Kind.CT:
        return f"{made_by}:{seed}"
    return f"{made_by}:{seed}:{'' if label is None else label}:{truncation:.4f}"


def sample_request(generator: Generator, study: Study, seed: int, label: int | None):
    from generator.sampling import SampleRequest

    truncation = 1.0 if generator.kind == Generator.Kind.CT else study.truncation  # a GAN notion
    return SampleRequest(seed=seed, label=label, truncation=truncation)


def sample_screened(sampler, requests: list) -> list:
    """The sampler's results in request order, refused ones included (provenance["privacy"]["passed"])."""
    from generator.sampling import PrivacyRefusal

    with _sampler_lock:  # one forward pass at a time per process
        try:
            return sampler.sample(requests)
        except PrivacyRefusal as refusal:
            return refusal.results


def passed_screen(result) -> bool:
    return result.provenance.get("privacy", {"passed": True})["passed"]


def generate_pending(study: Study, batch_size: int | None = None, on_batch: Callable[[], None] | None = None,
                     share: tuple[int, int] | None = None, backwards: bool = False) -> int:
    """Make every synthetic image the study still lacks; returns how many cases were filled.

    ``on_batch`` is called after each batch (a background job reports its progress there).
    ``share=(part, parts)`` limits the work to cases whose index is ``part`` modulo ``parts``
    (a helper on another worker); ``backwards`` takes the highest case numbers first, so a job
    finishing what its helpers have not reached meets them at the end instead of racing them.
    """
    batch_size = batch_size or generation_batch_size()
    pending = study.synthetic_pending().select_related("generator")
    if share:
        pending = pending.annotate(share=Mod("index", share[1])).filter(share=share[0])
    pending = pending.order_by("-generator", "-index") if backwards else pending.order_by("generator", "index")
    samplers = {}
    filled = 0
    while batch := list(pending[:batch_size]):
        for generator, cases in groupby(batch, key=lambda case: case.generator):
            if generator.pk not in samplers:
                samplers[generator.pk] = sampler_for(generator, study.pool.presentation_size)
            filled += _fill(study, generator, samplers[generator.pk], list(cases))
        if on_batch:
            on_batch()
    return filled


def generation_batch_size() -> int:
    """GENERATION_BATCH_SIZE, or for the device: the CUDA sampler's padded batch, 16 on a CPU."""
    if settings.GENERATION_BATCH_SIZE:
        return settings.GENERATION_BATCH_SIZE
    if settings.GENERATOR_DEVICE.startswith("cuda"):
        return 64
    if settings.GENERATOR_DEVICE == "auto":
        import torch  # only on the generation path: a worker, or the embedded site

        return 64 if torch.cuda.is_available() else 16
    return 16


def _fill(study: Study, generator: Generator, sampler, cases: list[Case]) -> int:
    images: dict[int, Image] = {}
    remaining = cases
    generated = 0
    while remaining:
        keys = {c.pk: generation_key(generator, c.generation_seed, c.synthetic_label, study.truncation) for c in remaining}
        found = {image.generation_key: image for image in Image.objects.filter(pool=study.pool, generation_key__in=keys.values())}
        images |= {c.pk: found[keys[c.pk]] for c in remaining if keys[c.pk] in found}
        missing = [case for case in remaining if case.pk not in images]
        refused = []
        if missing:
            results = sample_screened(sampler, [sample_request(generator, study, c.generation_seed, c.synthetic_label) for c in missing])
            for case, result in zip(missing, results):
                if passed_screen(result):
                    images[case.pk] = _store(study, generator, result, keys[case.pk])
                    generated += 1
                else:
                    refused.append(case)
        for case in refused:
            case.privacy_refusals += 1
            if case.privacy_refusals > MAX_PRIVACY_REFUSALS:
                raise GenerationError(
                    f"{study} case {case.index + 1}: the privacy screen refused {case.privacy_refusals} candidates from "
                    f"{generator} in a row; it may be reproducing training images. Check the generator before using it."
                )
        remaining = refused
    for case in cases:
        # The refusal count is a deterministic function of the seed, so concurrent workers agree on it.
        Case.objects.filter(pk=case.pk, synthetic_image__isnull=True).update(
            synthetic_image=images[case.pk], privacy_refusals=case.privacy_refusals
        )
    refusals = sum(case.privacy_refusals for case in cases)
    log.info("study %s: %d synthetic images from %s ready (%d generated, %d refused by the privacy screen)",
             study.pk, len(cases), generator, generated, refusals)
    return len(cases)


def _store(study: Study, generator: Generator, result, key: str) -> Image:
    origin = {"generator": generator.name, "generator_kind": generator.kind, **result.provenance}
    image = Image.build(study.pool, study.pool.present_sample(result), Source.SYNTHETIC, origin, generation_key=key)
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:  # another worker stored the same generation first
        image.delete_file()
        image = Image.objects.get(pool=study.pool, generation_key=key)
    return image


def prepare(study: Study) -> None:
    """Draw the cases and make their synthetic images: after this, readers can start."""
    study.build_cases()
    generate_pending(study)
