"""Background jobs of the analysis: the machine reader on a prepared study's images."""

from __future__ import annotations

from django.conf import settings

from readerstudy.analysis.machine_reader import compute_machine_reading
from readerstudy.jobs.engine import JobError, handler
from readerstudy.jobs.models import Job


@handler("machine_read", queue="gpu")
def machine_read(job: Job) -> None:
    """Score the study's scored images with the machine reader and store the result with the study.

    ``steps`` (default ``MACHINE_READER_STEPS``) trains the learned classifiers for that many
    steps; 0 reads with the image statistics alone. It trains models, so it never runs in a request.
    """
    steps = int(job.params.get("steps", settings.MACHINE_READER_STEPS))
    job.report_progress(0, 1, "reading the study's images")
    try:
        reading = compute_machine_reading(job.study, steps=max(steps, 1), learned=steps > 0)
    except ValueError as error:
        raise JobError(str(error)) from error
    job.result = {"machine_reading": reading.pk}
    Job.objects.filter(pk=job.pk).update(result=job.result)
    job.report_progress(1, 1, "")
