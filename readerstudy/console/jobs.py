"""Background jobs of the console: a grid of samples from a newly registered synthetic source."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from readerstudy.archive import encoding
from readerstudy.archive.models import Pool
from readerstudy.jobs.engine import JobError, handler
from readerstudy.jobs.models import Job
from readerstudy.studies.generation import GenerationError, passed_screen, sample_screened, sampler_for
from readerstudy.studies.models import Generator

SAMPLE_COUNT = 8


def sample_name(job_id: int, number: int) -> str:
    """Where a sample of a grid is kept (the default storage, never the readers' image store)."""
    return f"generator-samples/{job_id}/{number}.png"


@handler("generator_samples")
def generator_samples(job: Job) -> None:
    """Make ``count`` samples (seeds 0, 1, …; classes in turn for a conditional generator) at the pool's
    presentation size, through the same presentation as the pool's real images, and keep them as PNGs.

    params: ``generator_id``, ``pool_id``, ``count``. A sample the privacy screen refuses is not kept;
    the result counts it.
    """
    from generator.sampling import SampleRequest

    generator = Generator.objects.get(pk=job.params["generator_id"])
    pool = Pool.objects.get(pk=job.params["pool_id"])
    count = int(job.params.get("count", SAMPLE_COUNT))
    job.report_progress(0, count, f"opening {generator.name}")
    try:
        sampler = sampler_for(generator, pool.presentation_size)
    except (GenerationError, OSError, ValueError) as error:
        raise JobError(f"cannot open {generator.name}: {error}") from error
    kept, refused = [], 0
    for seed in range(count):
        label = seed % generator.num_classes if generator.num_classes else None
        [result] = sample_screened(sampler, [SampleRequest(seed=seed, label=label)])
        if passed_screen(result):
            data = encoding.encode_png(pool.present_sample(result))
            name = sample_name(job.pk, len(kept))
            storages["default"].delete(name)  # a job run again overwrites its own samples
            storages["default"].save(name, ContentFile(data))
            kept.append({"seed": seed, "label": label})
        else:
            refused += 1
        job.report_progress(seed + 1, count, f"{refused} refused by the privacy screen" if refused else "")
    job.result = {"pool_id": pool.pk, "pool": pool.name, "samples": kept, "refused": refused}
    Job.objects.filter(pk=job.pk).update(result=job.result)
