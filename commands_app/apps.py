from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Commands and events (write side)"

    def ready(self) -> None:
        # Effect kinds are registered once per process, before any append:
        # the event store schedules the effects that an appended event decides.
        from . import integration, notifications, payment_process

        payment_process.register()
        notifications.register()
        integration.register()

        from . import signals  # noqa: F401 -- connects the receivers
