from django.urls import path

from .api import CommandStatusApi, SubmitCommandApi, UnknownCommandApi
from .registry import COMMANDS

urlpatterns = [
    path(
        "commands/<uuid:command_id>/",
        CommandStatusApi.as_view(),
        name="command-status",
    ),
    # One endpoint per command, from the registry (one schema entry each).
    *(
        path(
            f"commands/{spec.name}/",
            SubmitCommandApi.as_view(spec=spec),
            name=f"command-{spec.name}",
        )
        for spec in COMMANDS.values()
    ),
    path(
        "commands/<str:name>/",
        UnknownCommandApi.as_view(),
        name="command-unknown",
    ),
]
