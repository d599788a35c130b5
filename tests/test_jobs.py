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
