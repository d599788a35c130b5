"""Background jobs of studies: drawing cases and making their synthetic images."""

from __future__ import annotations

from readerstudy.jobs.engine import JobError, handler
from readerstudy.jobs.models import Job
from readerstudy.studies.generation import GenerationError, generate_pending
from readerstudy.studies.lifecycle import State


@handler("prepare_study")
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


def _prepare(job: Job, study) -> None:
    study.build_cases()
    needed = study.cases.filter(synthetic_seed__isnull=False).count()

    def report() -> None:
        refused = sum(study.cases.values_list("privacy_refusals", flat=True))
        job.report_progress(needed - study.synthetic_pending().count(), needed, f"{refused} candidates refused by the privacy screen" if refused else "")

    report()
    try:
        generate_pending(study, on_batch=report)
    except GenerationError as error:
        raise JobError(str(error)) from error
    for assignment in study.assignments.select_related("reader"):
        study.assign(assignment.reader)
