"""ASGI entry point: HTTP and WebSocket on one origin.

HTTP goes to Django's WSGI handler in a thread pool (a2wsgi, with fewer hops to
the event loop: config/wsgi_bridge.py), so that sync DRF views run concurrently
instead of in Django's single ASGI sync thread; WebSocket goes to Channels.
"""

import os

from django.core.asgi import get_asgi_application

# Production unless told otherwise: `make run` and the tests name their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
from config.connections import use_web_connection_pool

# Views run in a thread pool: they borrow connections (config/connections.py).
use_web_connection_pool()
django_asgi = get_asgi_application()  # sets Django up before app imports

from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.core.wsgi import get_wsgi_application

from .routing import websocket_urlpatterns
from .startup import freeze_startup_objects
from .ws_auth import (
    BrowserOriginValidator,
    TokenOrSessionAuthMiddleware,
)
from .wsgi_bridge import ThreadedWSGI

application = ProtocolTypeRouter(
    {
        "http": ThreadedWSGI(
            get_wsgi_application(),  # type: ignore[arg-type]
            # Requests that sleep (Prefer: wait, min_position) get threads of
            # their own, up to their caps: WEB_THREADS stay for everything else,
            # so that waiters at their caps never starve plain requests.
            workers=settings.WEB_THREADS
            + settings.COMMAND_MAX_CONCURRENT_WAITS
            + settings.READ_MAX_CONCURRENT_WAITS,
        ),
        "websocket": BrowserOriginValidator(
            TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
# Everything imported and built so far lives as long as this worker.
freeze_startup_objects()
