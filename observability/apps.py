import atexit

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        # Importing the metrics fixes prometheus-client's mode (single or
        # multiprocess) from PROMETHEUS_MULTIPROC_DIR, once, at start.
        from . import metrics, tracing

        metrics.ensure_multiprocess_dir()
        if metrics.multiprocess_dir():
            # A web process that exits drops its live gauges (WebSockets open).
            atexit.register(metrics.mark_process_dead)
        tracing.configure_from_settings()
