from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz, readyz
from .metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("commands_app.urls")),
    path("api/", include("queries_app.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", metrics_view),
    path("", include("web.urls")),
]

if settings.BENCH_BASELINE_ENDPOINT:
    # The bench's floor for accepting a command (bench/, docs/performance.md).
    from bench.views import BaselineAcceptApi

    urlpatterns.insert(0, path("bench/baseline/", BaselineAcceptApi.as_view()))

handler404 = "config.http_errors.not_found"
handler500 = "config.http_errors.server_error"
