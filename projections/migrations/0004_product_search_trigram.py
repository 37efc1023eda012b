from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# Product search (`search`: part of a name or SKU, any case) is
# UPPER(column::text) LIKE UPPER('%…%'); trigram indexes on those expressions
# answer it without a scan. In SQL, as Django's OpClass over an expression
# needs django.contrib.postgres installed. Rebuilds copy them (LIKE ... INCLUDING ALL).
CREATE = """
CREATE INDEX read_products_search_name ON read_products
    USING gin ((UPPER(name::text)) gin_trgm_ops);
CREATE INDEX read_products_search_sku ON read_products
    USING gin ((UPPER(sku::text)) gin_trgm_ops);
"""
DROP = """
DROP INDEX IF EXISTS read_products_search_name;
DROP INDEX IF EXISTS read_products_search_sku;
"""


class Migration(migrations.Migration):
    """Search products by part of a name or SKU with trigram indexes (pg_trgm)."""

    dependencies = [
        ("projections", "0003_order_refunded_cents"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(CREATE, DROP),
    ]
