from django.urls import path

from commands_app.consumers import CommandStatusConsumer

websocket_urlpatterns = [
    path("ws/commands/", CommandStatusConsumer.as_asgi()),
]
