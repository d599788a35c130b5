"""Jobs on Celery workers: sending, claiming, heartbeats, and taking over jobs whose worker died.

A job's message may be delivered more than once (a redelivery after a worker was killed, a
visibility timeout passing, a take-over). The Job row decides who runs it: a worker runs a
job only after claiming it with one conditional UPDATE (queued, or running with no live
heartbeat), and a running job's worker refreshes ``heartbeat_at`` every
JOBS_HEARTBEAT_SECONDS. A worker that starts takes over the running jobs of the worker that
had its name before (that worker is gone), and every worker re-sends jobs whose heartbeat
is older than JOBS_STALE_SECONDS (a worker on another machine that died). A job whose
worker died JOBS_MAX_ATTEMPTS times (killed, out of memory) is failed with that reason
instead of being tried again: the coordinator's dead letter.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from readerstudy.jobs.claims import abandoned
from readerstudy.jobs.engine import QUEUES
from readerstudy.jobs.models import Job

log = logging.getLogger(__name__)


def send(job: Job) -> None:
    from readerstudy.celery import run_job

    run_job.apply_async((job.pk,), queue=QUEUES.get(job.kind, "default"))


def send_part(job: Job, function: str, part: int, parts: int) -> None:
    from readerstudy.celery import run_job_part

    run_job_part.apply_async((job.pk, function, part, parts), queue=QUEUES.get(job.kind, "default"))


def run_part(job_id: int, function: str, part: int, parts: int) -> None:
    """A helper share of a running job (engine.spread); the job itself finishes whatever is left."""
    job = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).select_related("study").first()
    if job is None:
        return
    module, name = function.rsplit(".", 1)
    try:
        getattr(importlib.import_module(module), name)(job, part, parts)
    except Exception:  # the job itself does this work too, and records its own failure
        log.exception("job %s: helper share %d/%d failed", job_id, part, parts)


def take_over(node: str | None = None, booted_at=None) -> int:
    """Re-send the jobs dead workers left running: stale ones and, given a node that just
    started, those its previous life held before ``booted_at``."""
    stale = timezone.now() - timedelta(seconds=settings.JOBS_STALE_SECONDS)
    dead = abandoned(stale)
    if node:
        dead |= Q(worker__startswith=f"{node} ", heartbeat_at__lt=booted_at, status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
    sent = 0
    for job in Job.objects.filter(dead):
        # Released only if still held by the dead worker (not claimed again meanwhile).
        if Job.objects.filter(pk=job.pk, worker=job.worker, heartbeat_at=job.heartbeat_at).update(heartbeat_at=None):
            log.warning("job %s: its worker %r is gone; sending it again", job.pk, job.worker or "?")
            send(job)
            sent += 1
    return sent


def start_watching(node: str) -> None:
    """At worker start: take over this node's orphans now, then look for stale jobs every JOBS_STALE_SECONDS."""
    booted_at = timezone.now()

    def watch() -> None:
        previous_life = node
        while True:
            try:
                take_over(previous_life, booted_at)
            except Exception:  # a broker or database outage must not stop the worker
                log.exception("looking for orphaned jobs failed")
            finally:
                connection.close()
            previous_life = None
            time.sleep(settings.JOBS_STALE_SECONDS)

    threading.Thread(target=watch, name="jobs-take-over", daemon=True).start()
