"""Who runs a job: one conditional UPDATE claims it, a heartbeat holds it.

Celery workers (celery_dispatch.py) and the web process's threads (the embedded default,
engine.py) run jobs the same way: ``run_claimed`` runs a job only after claiming it (queued
or running, and no live heartbeat), and refreshes ``heartbeat_at`` every
JOBS_HEARTBEAT_SECONDS while it runs. A job is never run twice at once, and a job whose
runner died (a killed worker, a web process restarted mid-preparation) is found by its stale
heartbeat and run again: its handlers are idempotent (generation keys are unique per pool).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from readerstudy.jobs.engine import run
from readerstudy.jobs.models import Job

log = logging.getLogger(__name__)


def run_claimed(job_id: int, worker: str) -> None:
    """Run the job here unless it is finished or another live worker holds it."""
    now = timezone.now()
    unheld = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - timedelta(seconds=settings.JOBS_STALE_SECONDS))
    # Queued jobs too only while unheld: of two deliveries of a new job, the first claim wins.
    claimed = Job.objects.filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING), unheld, pk=job_id)
    if not claimed.update(worker=worker, heartbeat_at=now):
        log.info("job %s: finished, or held by a live worker; delivery ignored", job_id)
        return
    job = Job.objects.get(pk=job_id)
    if job.status == Job.Status.RUNNING and job.attempts >= settings.JOBS_MAX_ATTEMPTS:
        Job.objects.filter(pk=job_id).update(
            status=Job.Status.FAILED, finished_at=timezone.now(),
            message=f"its worker stopped {job.attempts} times while running it (killed, or out of memory); "
                    "not tried again. Check the workers' logs, then start the job again.",
        )
        return
    beating = threading.Event()
    heart = threading.Thread(target=_beat, args=(job_id, worker, beating), daemon=True)
    heart.start()
    try:
        run(job_id)
    finally:
        beating.set()
        heart.join()


def _beat(job_id: int, worker: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.JOBS_HEARTBEAT_SECONDS):
            Job.objects.filter(pk=job_id, worker=worker).update(heartbeat_at=timezone.now())
    finally:
        connection.close()


def abandoned(stale) -> Q:
    """Jobs whose runner stopped beating before ``stale``: running, or claimed but not yet started
    (a runner killed between its claim and its first UPDATE), so that a later delivery is refused."""
    running = Q(status=Job.Status.RUNNING) & (Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale))
    return running | Q(status=Job.Status.QUEUED, heartbeat_at__lt=stale)


def orphaned_jobs():
    """Embedded default: jobs nobody runs, abandoned or queued (never claimed) for longer than the stale time."""
    stale = timezone.now() - timedelta(seconds=settings.JOBS_STALE_SECONDS)
    return Job.objects.filter(abandoned(stale) | Q(status=Job.Status.QUEUED, heartbeat_at__isnull=True, created_at__lt=stale))
