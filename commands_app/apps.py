from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Commands and events (write side)"

    def ready(self) -> None:
        from . import signals  # noqa: F401 -- connects the receivers
