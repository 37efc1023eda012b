from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API plumbing (errors, parser, tokens, sign-in)"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from .auth import log_lockout
        from .tokens import revoke_tokens_on_password_change

        post_save.connect(
            revoke_tokens_on_password_change,
            sender=get_user_model(),
            dispatch_uid="api.revoke_tokens_on_password_change",
        )
        user_locked_out.connect(log_lockout, dispatch_uid="api.log_lockout")
