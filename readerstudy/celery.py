"""The Celery app: background jobs (readerstudy/jobs) on workers, when CELERY_BROKER_URL is set.

    celery -A readerstudy worker -Q gpu --concurrency 1 -n gpu@%h   # a GPU worker: generation
    celery -A readerstudy worker -Q default -n cpu@%h               # imports and other CPU work
    celery -A readerstudy worker -Q gpu,default --concurrency 1     # a machine with no GPU serving both

Delivery policy, and why: a message is acknowledged only after its job ran (``acks_late``),
and put back when the worker process dies (``reject_on_worker_lost``), so a killed worker
loses nothing; one message at a time per process (a preparation can take an hour).
Redelivery and duplicates are safe because every job is idempotent and a worker claims a
job on the Job row before running it (readerstudy/jobs/celery_dispatch.py). Outcomes live
on the Job row, not in a result backend.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")

from django.conf import settings  # noqa: E402 - after DJANGO_SETTINGS_MODULE is set

app = Celery("readerstudy")
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    broker_connection_retry_on_startup=True,
    # Redis: a message not acknowledged within this time goes back to the queue, so it must
    # be longer than the longest job (a large study on a slow worker). RabbitMQ's equivalent is
    # its consumer_timeout (README, Deploy).
    broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue="default",
    task_queues=[Queue("default"), Queue("gpu")],
    worker_send_task_events=False,
)


@app.task(name="readerstudy.run_job")
def run_job(job_id: int) -> None:
    from readerstudy.jobs.claims import run_claimed

    run_claimed(job_id, worker_id(run_job.request.hostname))


@app.task(name="readerstudy.run_job_part")
def run_job_part(job_id: int, function: str, part: int, parts: int) -> None:
    from readerstudy.jobs.celery_dispatch import run_part

    run_part(job_id, function, part, parts)


def worker_id(node: str | None) -> str:
    return f"{node or 'celery'} {os.getpid()}"


@worker_ready.connect
def _take_over_orphans(sender=None, **_) -> None:
    from readerstudy.jobs.celery_dispatch import start_watching

    start_watching(sender.hostname)
