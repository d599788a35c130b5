"""Background jobs: study preparation, image import, generator previews.

One interface whatever runs the work:

    from readerstudy.jobs.engine import enqueue, handler

    @handler("prepare_study")            # in an app's ``jobs.py``, found at start-up
    def prepare_study(job: Job) -> None:
        job.report_progress(done, total)  # the coordinator's progress bar reads this

    job = enqueue("prepare_study", study=study, user=request.user)

``JOBS_MODE`` (settings) decides where a job runs: ``thread`` (the embedded
default: a background thread of the web process, so a request never waits for
a generator), ``inline`` (in the caller, for tests and management commands),
or ``celery`` (workers on a broker; the default when ``CELERY_BROKER_URL`` is set).
"""
