from django.apps import AppConfig


class QueriesAppConfig(AppConfig):
    name = "queries_app"
    verbose_name = "Queries (read API)"
