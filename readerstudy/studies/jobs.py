"""Background jobs of studies: drawing cases and making their synthetic images."""

from __future__ import annotations

from math import ceil

from django.conf import settings

from readerstudy.jobs.engine import JobError, enqueue, handler, spread
from readerstudy.jobs.models import Job
from readerstudy.studies.generation import GenerationError, generate_pending, generation_batch_size
from readerstudy.studies.lifecycle import State


@handler("prepare_study", queue="gpu")
def prepare_study(job: Job) -> None:
    """Draw the study's cases and make every synthetic image it lacks, reporting images ready / needed.

    Safe to run again after an interruption: drawn cases are kept and images already made are
    found by their generation key, so nothing is made or stored twice.
    """
    study = job.study
    try:
        _prepare(job, study)
    except Exception as error:
        # Back to draft, with the reason in the audit log; the job records it for the page too.
        reason = "; ".join(error.messages) if hasattr(error, "messages") else str(error)
        if study.state == State.PREPARING:
            study.fail_preparing(job.created_by, reason)
        raise
    if study.state == State.PREPARING:
        study.finish_preparing(job.created_by)
    if settings.MACHINE_READ_AFTER_PREPARE:  # the analyst's report shows it beside the readers
        enqueue("machine_read", study=study, user=job.created_by)


def _prepare(job: Job, study) -> None:
    study.build_cases()
    needed = study.cases.filter(synthetic_seed__isnull=False).count()

    def report() -> None:
        refused = sum(study.cases.values_list("privacy_refusals", flat=True))
        job.report_progress(needed - study.synthetic_pending().count(), needed, f"{refused} candidates refused by the privacy screen" if refused else "")

    report()
    # On Celery, idle workers may take shares of the cases; this job still makes whatever they
    # have not, from the other end, so it finishes alone if no helper ever runs.
    parts = min(settings.PREPARE_PARTS, ceil(study.synthetic_pending().count() / generation_batch_size()))
    helpers = spread(job, "readerstudy.studies.jobs.prepare_share", parts)
    try:
        if helpers:
            generate_pending(study, on_batch=report, share=(0, parts))
        generate_pending(study, on_batch=report, backwards=bool(helpers))
    except GenerationError as error:
        raise JobError(str(error)) from error
    for assignment in study.assignments.select_related("reader"):
        study.assign(assignment.reader)


def prepare_share(job: Job, part: int, parts: int) -> None:
    """A helper's share of a preparation (on another worker): the cases numbered ``part`` modulo ``parts``."""
    study = job.study

    def report() -> None:
        needed = study.cases.filter(synthetic_seed__isnull=False).count()
        job.report_progress(needed - study.synthetic_pending().count(), needed)

    generate_pending(study, on_batch=report, share=(part, parts))
