"""Enqueue jobs and run them; see the package docstring for the modes."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, transaction
from django.utils import timezone

from readerstudy.jobs.models import Job

log = logging.getLogger(__name__)

Handler = Callable[[Job], None]
HANDLERS: dict[str, Handler] = {}
# The Celery queue of each kind: "gpu" for work that runs a generator, "default" for the rest.
QUEUES: dict[str, str] = {}


class JobError(RuntimeError):
    """A job cannot go on; its message is shown to the coordinator as it is."""


def handler(kind: str, queue: str = "default") -> Callable[[Handler], Handler]:
    """Register a job kind; ``queue="gpu"`` sends it to the GPU workers in Celery mode."""

    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        QUEUES[kind] = queue
        return function

    return register


def enqueue(kind: str, *, study=None, user=None, **params) -> Job:
    if kind not in HANDLERS:
        raise ValueError(f"no job handler for {kind!r}")
    job = Job.objects.create(kind=kind, study=study, created_by=user if user and user.is_authenticated else None, params=params)
    mode = jobs_mode()
    if mode == "inline":
        run(job.pk)
        job.refresh_from_db()
    elif mode == "thread":
        # After commit, so the thread sees the job row (and whatever the caller saved with it).
        transaction.on_commit(lambda: _start_thread(job.pk))
    else:
        from readerstudy.jobs.celery_dispatch import send

        transaction.on_commit(lambda: send(job))
    return job


def spread(job: Job, function: str, parts: int) -> int:
    """Offer ``parts - 1`` helper shares of a running job to other workers; returns how many were sent.

    ``function`` (a dotted path) is called on a worker as ``function(job, part, parts)`` for
    part = 1 .. parts-1. Helpers only speed a job up: the job itself must still finish all of
    its work (a helper may never run, or run after the job ended), and a helper's failure is
    logged, not recorded on the job. Outside Celery mode there are no other workers: nothing is sent.
    """
    if jobs_mode() != "celery" or parts < 2:
        return 0
    from readerstudy.jobs.celery_dispatch import send_part

    for part in range(1, parts):
        send_part(job, function, part, parts)
    return parts - 1


def jobs_mode() -> str:
    return settings.JOBS_MODE or ("celery" if settings.CELERY_BROKER_URL else "thread")


def _run_in_thread(job_id: int) -> None:
    from readerstudy.jobs.claims import run_claimed

    try:
        run_claimed(job_id, f"{socket.gethostname()} {os.getpid()} thread")  # this process holds it
    finally:
        close_old_connections()


def _start_thread(job_id: int) -> None:
    threading.Thread(target=_run_in_thread, args=(job_id,), name=f"job-{job_id}", daemon=True).start()


def resume_orphans() -> int:
    """Embedded default: run again, in threads of this process, the jobs a stopped web
    process left behind (a restart mid-preparation); returns how many were started.

    Called when a coordinator looks at a page that shows jobs, so a study left "preparing"
    by a restart goes on once its heartbeat is JOBS_STALE_SECONDS old. Celery workers take
    over their own orphans (celery_dispatch.take_over).
    """
    if jobs_mode() != "thread":
        return 0
    from readerstudy.jobs.claims import orphaned_jobs

    orphans = list(orphaned_jobs().values_list("pk", flat=True))
    for job_id in orphans:
        log.warning("job %s: its web process stopped; running it again", job_id)
        _start_thread(job_id)  # the claim decides: of two pages resuming one job, one runs it
    return len(orphans)


def run(job_id: int) -> None:
    """Run a job to its end, recording success or the reason it failed in words."""
    job = Job.objects.get(pk=job_id)
    if job.status == Job.Status.SUCCEEDED:
        return  # delivered twice: the work is done
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now(), attempts=job.attempts + 1)
    job.refresh_from_db()
    try:
        HANDLERS[job.kind](job)
    except Exception as error:  # recorded for the coordinator, never swallowed silently
        reason = _reason(error)
        if not isinstance(error, (JobError, ValidationError)):
            log.exception("job %s failed", job)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, message=reason, finished_at=timezone.now())
        return
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now())


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    if isinstance(error, JobError):
        return str(error)
    return f"internal error ({type(error).__name__}): {error}"
