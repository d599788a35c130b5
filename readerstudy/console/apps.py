from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "readerstudy.console"
    label = "console"
