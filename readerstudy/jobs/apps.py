from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "readerstudy.jobs"
    label = "jobs"

    def ready(self) -> None:
        autodiscover_modules("jobs")  # each app's jobs.py registers its handlers
