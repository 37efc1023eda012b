"""GET /metrics: the Prometheus exposition of every process on this host."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from commands_app.effects import EffectsCollector
from observability import metrics
from projections.monitoring import ProjectionCollector

QUEUES = ("commands", "imports", "projections")


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answer the metrics to allowed addresses or with the bearer token, else 404."""
    if not metrics.is_allowed(
        request.META.get("REMOTE_ADDR"),
        request.headers.get("Authorization"),
        allowed=settings.METRICS_ALLOWED_IPS,
        token=settings.METRICS_TOKEN,
    ):
        return HttpResponse(status=404)
    body = metrics.render(
        [
            ("projections", ProjectionCollector()),
            ("effects", EffectsCollector()),
            (
                "queues",
                metrics.QueueDepthCollector(settings.CELERY_BROKER_URL, QUEUES),
            ),
        ]
    )
    return HttpResponse(body, content_type=metrics.CONTENT_TYPE)
