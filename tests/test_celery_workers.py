"""Jobs on Celery workers: separate worker processes against the real Redis, started the documented way.

The worker tests need a broker: Redis at TEST_CELERY_BROKER_URL (default
redis://127.0.0.1:6379/1). Where none answers they skip with that message, except
where REQUIRE_BROKER is set (CI, which starts Redis in .ci/run): there it is an error.
Each test uses its own Redis key prefix, so runs sharing the Redis never see each other's messages.
"""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import smooth_image, write_png16
from tests.site_process import BIN, SiteProcesses, migrated_database, wait_until

BROKER = os.getenv("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
BATCH = 2  # small batches: many of them, so the worker can be killed in the middle of one


def broker_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return f"no Redis broker at {BROKER} ({error}); start one (see .ci/run) to run the Celery worker tests"
    return None


def needs_broker():
    if problem := broker_problem():
        if os.getenv("REQUIRE_BROKER"):
            raise RuntimeError(f"REQUIRE_BROKER is set but {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    return migrated_database(tmp_path_factory.mktemp("migrated"))


@pytest.fixture
def site(tmp_path, migrated):
    needs_broker()
    prefix = f"rs-test-{uuid.uuid4().hex[:12]}:"
    site = SiteProcesses(
        tmp_path / "site", migrated,
        CELERY_BROKER_URL=BROKER, CELERY_BROKER_KEY_PREFIX=prefix,
        GENERATION_BATCH_SIZE=str(BATCH), OMP_NUM_THREADS="1", LOG_LEVEL="INFO",
    )
    yield site
    site.stop_all()
    import redis

    client = redis.Redis.from_url(BROKER)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


def worker(site: SiteProcesses, queues: str, node: str, log: str):
    """The documented command (README, Deploy): celery -A readerstudy worker -Q gpu --concurrency 1."""
    return site.start(str(BIN / "celery"), "-A", "readerstudy", "worker", "-Q", queues, "--concurrency", "1",
                      "-n", f"{node}@%h", "--loglevel", "INFO", log=log)


def new_study(site: SiteProcesses, tmp_path: Path, checkpoint: Path, cases: int, name: str = "workers") -> int:
    """A mixed study of synthetic cases only, with one reader; its preparation enqueued. Returns the job's id."""
    folder = tmp_path / f"archive-{name}"
    folder.mkdir()
    for i in range(4):
        write_png16(folder / f"real-{i}.png", smooth_image(i))
    return int(site.shell(f"""
from django.contrib.auth.models import User
from readerstudy.accounts.models import Profile
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Pool
from readerstudy.jobs.engine import enqueue, jobs_mode
from readerstudy.studies.models import Generator, Study
assert jobs_mode() == "celery", jobs_mode()
pool, _ = Pool.objects.get_or_create(name="tiny", defaults=dict(presentation_size=32, bit_depth=16))
from pathlib import Path
import_images(Path({str(folder)!r}), pool)
generator = Generator.objects.create(name={name!r}, path={str(checkpoint)!r})
study = Study.objects.create(name={name!r}, design="mixed", pool=pool, case_count={cases}, synthetic_fraction=1.0, seed=7)
study.generators.set([generator])
reader, created = User.objects.get_or_create(username="rad")
if created:
    Profile.objects.create(user=reader, role="reader", specialty="radiologist", years_experience=5)
study.assignments.create(reader=reader)
print(enqueue("prepare_study", study=study).pk)
""").splitlines()[-1])


def job_row(site: SiteProcesses, job_id: int) -> dict:
    status, done, total, message, attempts = site.query(
        "SELECT status, done, total, message, attempts FROM jobs_job WHERE id = ?", job_id)[0]
    return {"status": status, "done": done, "total": total, "message": message, "attempts": attempts}


def finished(site: SiteProcesses, job_id: int):
    row = job_row(site, job_id)
    return row if row["status"] in ("succeeded", "failed") else None


def study_outcome(site: SiteProcesses, job_id: int) -> dict:
    """What the study holds after its preparation: cases, their images, the image store."""
    (study_id,) = site.query("SELECT study_id FROM jobs_job WHERE id = ?", job_id)[0]
    cases, filled, distinct_images = site.query(
        "SELECT COUNT(*), COUNT(synthetic_image_id), COUNT(DISTINCT synthetic_image_id) FROM studies_case WHERE study_id = ?", study_id)[0]
    keys = [key for (key,) in site.query(
        "SELECT i.generation_key FROM archive_image i JOIN studies_case c ON c.synthetic_image_id = i.id WHERE c.study_id = ?", study_id)]
    (slots,) = site.query(
        "SELECT COUNT(*) FROM studies_slot s JOIN studies_assignment a ON s.assignment_id = a.id WHERE a.study_id = ?", study_id)[0]
    stored_rows = {token for (token,) in site.query("SELECT token FROM archive_image")}
    files = {path.stem for path in (site.folder / "images").rglob("*.png")}
    return {"cases": cases, "filled": filled, "distinct_images": distinct_images, "distinct_keys": len(set(keys)),
            "synthetic_rows": site.query("SELECT COUNT(*) FROM archive_image WHERE source = 'synthetic'")[0][0],
            "slots": slots, "rows_without_file": len(stored_rows - files), "files_without_row": len(files - stored_rows)}


def test_a_gpu_worker_process_prepares_a_study_and_fails_a_changed_generator_with_its_reason(site, tmp_path, tiny_checkpoint):
    changed = tmp_path / "changed.safetensors"
    changed.write_bytes(tiny_checkpoint.read_bytes())
    good = new_study(site, tmp_path, tiny_checkpoint, cases=12, name="good")
    bad = new_study(site, tmp_path, changed, cases=4, name="changed")
    with open(changed, "ab") as file:
        file.write(b"tampered after registration")
    assert job_row(site, good)["status"] == "queued"  # nothing runs in the web process

    worker(site, "gpu", "gpu", "worker.log")
    for job in (good, bad):
        wait_until(lambda: finished(site, job), 240, 0.2, f"job {job} ({site.log('worker.log')})")

    assert job_row(site, good) | {"message": ""} == {"status": "succeeded", "done": 12, "total": 12, "message": "", "attempts": 1}
    outcome = study_outcome(site, good)
    assert outcome["cases"] == outcome["filled"] == outcome["distinct_images"] == outcome["distinct_keys"] == 12
    assert outcome["slots"] == 12  # the reader added before preparation got an order
    assert outcome["rows_without_file"] == 0
    failed = job_row(site, bad)
    assert failed["status"] == "failed"
    assert "changed since it was registered as generator changed" in failed["message"]
    assert study_outcome(site, bad)["filled"] == 0


def test_a_worker_killed_mid_batch_then_restarted_finishes_the_study_with_no_duplicate_and_nothing_lost(site, tmp_path, tiny_checkpoint):
    cases = 160
    job = new_study(site, tmp_path, tiny_checkpoint, cases=cases)
    first = worker(site, "gpu,default", "killed", "first.log")
    wait_until(lambda: job_row(site, job)["done"] >= 4 * BATCH, 240, 0.02, f"progress ({site.log('first.log')})")
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool process, at once, as the OOM killer would
    first.wait()
    interrupted = job_row(site, job)
    assert interrupted["status"] == "running" and BATCH <= interrupted["done"] < cases, interrupted

    worker(site, "gpu,default", "killed", "second.log")  # restarted under the same name
    wait_until(lambda: finished(site, job), 300, 0.2, f"the job after the restart ({site.log('second.log')})")

    row = job_row(site, job)
    assert (row["status"], row["done"], row["total"], row["attempts"]) == ("succeeded", cases, cases, 2), row
    outcome = study_outcome(site, job)
    assert outcome["cases"] == outcome["filled"] == outcome["distinct_images"] == outcome["distinct_keys"] == cases
    assert outcome["synthetic_rows"] == cases  # no image stored twice
    assert outcome["slots"] == cases
    assert outcome["rows_without_file"] == 0
    # A file written in the killed batch before its row was saved is unreferenced, never shown; at most one batch.
    assert outcome["files_without_row"] <= BATCH


# The claim and dead-letter rules, without a broker: run_claimed on rows in states a worker meets.

@pytest.fixture
def stored_job(db, pool, checkpoint):
    from readerstudy.jobs.models import Job
    from readerstudy.studies.models import Study

    study = Study.objects.create(name="claims", design="paired", pool=pool, case_count=4, seed=3)
    study.generators.set([checkpoint])
    return Job.objects.create(kind="prepare_study", study=study)


def test_a_job_held_by_a_live_worker_is_not_run_twice(stored_job):
    from django.utils import timezone

    from readerstudy.jobs.claims import run_claimed

    stored_job.__class__.objects.filter(pk=stored_job.pk).update(status="running", attempts=1, worker="other 1", heartbeat_at=timezone.now())
    run_claimed(stored_job.pk, "me 2")
    stored_job.refresh_from_db()
    assert (stored_job.status, stored_job.attempts, stored_job.worker) == ("running", 1, "other 1")
    assert not stored_job.study.cases.exists()


def test_a_job_whose_worker_went_silent_is_taken_over_and_finished(stored_job, settings):
    from django.utils import timezone

    from readerstudy.jobs.claims import run_claimed

    silent_since = timezone.now() - timedelta(seconds=settings.JOBS_STALE_SECONDS + 1)
    stored_job.__class__.objects.filter(pk=stored_job.pk).update(status="running", attempts=1, worker="dead 1", heartbeat_at=silent_since)
    run_claimed(stored_job.pk, "me 2")
    stored_job.refresh_from_db()
    assert (stored_job.status, stored_job.attempts, stored_job.worker) == ("succeeded", 2, "me 2"), stored_job.message
    assert stored_job.study.is_ready()


def test_a_job_whose_worker_died_too_often_fails_with_that_reason(stored_job, settings):
    from readerstudy.jobs.claims import run_claimed

    stored_job.__class__.objects.filter(pk=stored_job.pk).update(status="running", attempts=settings.JOBS_MAX_ATTEMPTS, heartbeat_at=None)
    run_claimed(stored_job.pk, "me 2")
    stored_job.refresh_from_db()
    assert stored_job.status == "failed"
    assert f"its worker stopped {settings.JOBS_MAX_ATTEMPTS} times" in stored_job.message
    assert not stored_job.study.cases.exists()


def test_finished_jobs_delivered_again_are_left_alone(stored_job):
    from readerstudy.jobs.claims import run_claimed

    for status in ("succeeded", "failed"):
        stored_job.__class__.objects.filter(pk=stored_job.pk).update(status=status, attempts=1, message="kept")
        run_claimed(stored_job.pk, "me 2")
        stored_job.refresh_from_db()
        assert (stored_job.status, stored_job.attempts, stored_job.message) == (status, 1, "kept")


def test_generation_work_goes_to_the_gpu_queue():
    from readerstudy.jobs.engine import QUEUES

    assert QUEUES["prepare_study"] == "gpu"


def test_a_job_claimed_by_a_worker_killed_before_starting_it_is_sent_again(stored_job, settings, monkeypatch):
    """Killed between its claim and its first UPDATE: the job is still queued but held, so a
    redelivery is refused; the take-over must release it and send it again."""
    from datetime import timedelta

    from django.utils import timezone

    from readerstudy.jobs import celery_dispatch

    sent = []
    monkeypatch.setattr(celery_dispatch, "send", lambda job: sent.append(job.pk))
    long_ago = timezone.now() - timedelta(seconds=settings.JOBS_STALE_SECONDS + 5)
    stored_job.__class__.objects.filter(pk=stored_job.pk).update(worker="gone 1", heartbeat_at=long_ago)
    assert celery_dispatch.take_over() == 1 and sent == [stored_job.pk]
    stored_job.refresh_from_db()
    assert stored_job.status == "queued" and stored_job.heartbeat_at is None  # claimable by the next delivery
    assert celery_dispatch.take_over() == 0  # released once, not again while nobody holds it
