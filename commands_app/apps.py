from django.apps import AppConfig


class CommandsAppConfig(AppConfig):
    name = "commands_app"
    verbose_name = "Commands and events (write side)"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from .auth import log_lockout
        from .tokens import revoke_tokens_on_password_change

        post_save.connect(
            revoke_tokens_on_password_change,
            sender=get_user_model(),
            dispatch_uid="commands_app.revoke_tokens_on_password_change",
        )
        user_locked_out.connect(log_lockout, dispatch_uid="commands_app.log_lockout")

        # Effect kinds are registered once per process, before any append:
        # the event store schedules the effects that an appended event decides.
        from . import integration, notifications, payment_process

        payment_process.register()
        notifications.register()
        integration.register()

        from . import signals  # noqa: F401 -- connects the receivers
