"""Keep a process's start-up objects out of the cyclic collector's way.

A full collection walks every object the collector tracks: in a web worker or a
Celery process, about 176,000 objects that Django, DRF, Celery, the URL conf and
OpenTelemetry made at start-up, for 62-65 ms (docs/performance.md), a pause
that lands on whichever request or command runs then. Those objects live as
long as the process, so once it is ready `gc.freeze()` moves them to the
permanent generation, which no collection walks: full collections then take a
few ms. What requests and commands create is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect the start-up garbage once, then freeze everything still alive."""
    gc.collect()
    gc.freeze()
