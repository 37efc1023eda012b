"""Tell a user's open sockets when the user signs out, loses every token, or
is changed.

Both pushes go out after the transaction commits, so that a socket reading the
user again sees the change.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from api.tokens import tokens_revoked

from .push import layer


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, user: Any = None, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        user_id = int(user.pk)
        transaction.on_commit(lambda: layer.close_user_sockets(user_id))


@receiver(tokens_revoked)
def close_sockets_when_every_token_goes(
    sender: Any, user: Any = None, everywhere: bool = False, **kwargs: Any
) -> None:
    # A password change or a logout everywhere: whatever the sockets were
    # opened with is void now. (A single logout sends user_logged_out too.)
    if everywhere and user is not None and user.pk is not None:
        user_id = int(user.pk)
        transaction.on_commit(lambda: layer.close_user_sockets(user_id))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def recheck_sockets_on_save(
    sender: Any,
    instance: Any,
    created: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    # A new user has no sockets; a sign-in only stamps last_login.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    user_id = int(instance.pk)
    transaction.on_commit(lambda: layer.recheck_user_sockets(user_id))
