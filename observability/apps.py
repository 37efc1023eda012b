from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        # Importing the metrics fixes prometheus-client's mode (single or
        # multiprocess) from PROMETHEUS_MULTIPROC_DIR, once, at start.
        from . import metrics, tracing

        metrics.ensure_multiprocess_dir()
        tracing.configure_from_settings()
