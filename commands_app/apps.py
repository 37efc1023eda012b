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

        from projections import signals as read_side

        from . import signals  # noqa: F401 -- connects the receivers
        from .push import broadcast, status

        # The read side's announcements, after its rounds' commits: the pushes.
        # projections/ sends them and never imports the write side
        # (docs/architecture.md "Map").
        read_side.projected.connect(status.on_projected, dispatch_uid="push.projected")
        read_side.lag_reported.connect(
            broadcast.on_lag_reported, dispatch_uid="push.projection_lag"
        )
        read_side.stock_changed.connect(
            broadcast.on_stock_changed, dispatch_uid="push.stock"
        )
