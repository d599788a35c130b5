from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "readerstudy.archive"
    label = "archive"
