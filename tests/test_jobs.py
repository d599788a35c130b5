"""Background jobs: one interface, run inline (tests, commands) or in a thread of the web process."""

from __future__ import annotations

import time

import pytest

from readerstudy.jobs.engine import enqueue
from readerstudy.jobs.models import Job
from readerstudy.studies.models import Study


def new_study(pool, checkpoint, cases: int = 6) -> Study:
    study = Study.objects.create(name="jobs", design="paired", pool=pool, case_count=cases, seed=7)
    study.generators.set([checkpoint])
    return study


@pytest.mark.django_db
def test_prepare_study_job_reports_progress_and_makes_every_image(pool, checkpoint, readers):
    study = new_study(pool, checkpoint)
    study.assignments.create(reader=readers[0])
    job = enqueue("prepare_study", study=study)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert (job.done, job.total, job.percent) == (6, 6, 100)
    assert study.is_ready()
    assert study.assignments.get().slots.count() == 6  # readers added before preparation get their order


@pytest.mark.django_db
def test_a_failed_job_says_why_in_words(pool, tiny_checkpoint, tmp_path):
    from readerstudy.studies.models import Generator

    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(tiny_checkpoint.read_bytes())
    study = new_study(pool, Generator.objects.create(name="copy", path=str(copy)))
    with open(copy, "ab") as file:
        file.write(b"tampered")
    job = enqueue("prepare_study", study=study)
    assert job.status == Job.Status.FAILED
    assert "changed since it was registered" in job.message
    assert not study.is_ready()


@pytest.mark.django_db
def test_running_a_finished_job_again_does_nothing(pool, checkpoint):
    from readerstudy.jobs.engine import run

    study = new_study(pool, checkpoint)
    job = enqueue("prepare_study", study=study)
    run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)


@pytest.mark.django_db(transaction=True)
def test_thread_mode_returns_at_once_and_finishes_in_the_background(pool, checkpoint, settings):
    settings.JOBS_MODE = "thread"
    study = new_study(pool, checkpoint)
    job = enqueue("prepare_study", study=study)  # autocommit: the thread starts now
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job.pk).is_active and time.monotonic() < deadline:
        time.sleep(0.05)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert study.is_ready()


@pytest.mark.django_db
def test_a_prepared_study_is_read_by_the_machine_reader(pool, checkpoint, settings):
    from readerstudy.analysis.machine_reader import machine_summary

    settings.MACHINE_READ_AFTER_PREPARE = True
    settings.MACHINE_READER_STEPS = 0  # the image statistics alone: seconds
    study = Study.objects.create(name="machine", design="mixed", pool=pool, case_count=12, seed=5)
    study.generators.set([checkpoint])
    job = enqueue("prepare_study", study=study)
    assert job.status == Job.Status.SUCCEEDED, job.message
    reading = Job.objects.get(kind="machine_read", study=study)
    assert reading.status == Job.Status.SUCCEEDED, reading.message
    summary = machine_summary(study)
    assert summary["current"] and 0.0 <= summary["auc"] <= 1.0 and summary["n_real"] + summary["n_synthetic"] == 12


@pytest.mark.django_db(transaction=True)
def test_a_preparation_left_running_by_a_stopped_web_process_goes_on_when_the_coordinator_looks(
    client, pool, checkpoint, settings
):
    """The embedded default runs jobs in threads of the web process: a restart mid-preparation
    must not leave the study 'preparing' for ever."""
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from readerstudy.jobs.engine import resume_orphans
    from tests.conftest import make_user

    settings.JOBS_MODE = "thread"
    coordinator = make_user("coord", role="coordinator")
    study = new_study(pool, checkpoint)
    study.owner = coordinator
    study.save()
    study.start_preparing(coordinator)
    long_ago = timezone.now() - timedelta(seconds=settings.JOBS_STALE_SECONDS + 5)
    orphan = Job.objects.create(kind="prepare_study", study=study, created_by=coordinator, status=Job.Status.RUNNING,
                                attempts=1, worker="web 4242 thread", started_at=long_ago, heartbeat_at=long_ago)
    held = Job.objects.create(kind="prepare_study", study=study, status=Job.Status.RUNNING, attempts=1,
                              worker="web 4343 thread", started_at=long_ago, heartbeat_at=timezone.now())

    client.login(username="coord", password="pw-coord")
    assert client.get(reverse("console:study", args=[study.pk])).status_code == 200
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=orphan.pk).is_active and time.monotonic() < deadline:
        time.sleep(0.05)
    orphan.refresh_from_db()
    assert orphan.status == Job.Status.SUCCEEDED and orphan.attempts == 2, orphan.message
    study.refresh_from_db()
    assert study.is_ready() and study.state == "ready"
    assert Job.objects.get(pk=held.pk).status == Job.Status.RUNNING  # a live heartbeat: someone runs it
    assert resume_orphans() == 0


@pytest.mark.django_db(transaction=True)
def test_a_queued_job_claimed_by_one_runner_is_not_run_by_another(pool, checkpoint):
    """Two deliveries of one new job (two pages resuming it, a redelivered message): the first claim wins."""
    from django.utils import timezone

    from readerstudy.jobs.claims import run_claimed

    job = Job.objects.create(kind="prepare_study", study=new_study(pool, checkpoint))
    Job.objects.filter(pk=job.pk).update(worker="first 1", heartbeat_at=timezone.now())  # claimed, not yet started
    run_claimed(job.pk, "second 2")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.worker) == (Job.Status.QUEUED, 0, "first 1")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=None)  # released (its runner died before starting it)
    run_claimed(job.pk, "second 2")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.worker) == (Job.Status.SUCCEEDED, 1, "second 2")
