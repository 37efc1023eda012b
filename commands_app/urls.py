from django.urls import path

from .api import SUBMIT_VIEWS, CommandStatusApi, UnknownCommandApi

urlpatterns = [
    path(
        "commands/<uuid:command_id>/",
        CommandStatusApi.as_view(),
        name="command-status",
    ),
    *(
        path(f"commands/{name}/", view, kwargs, name=f"command-{name}")
        for name, (view, kwargs) in SUBMIT_VIEWS.items()
    ),
    path(
        "commands/<str:name>/",
        UnknownCommandApi.as_view(),
        name="command-unknown",
    ),
]
