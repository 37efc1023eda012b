from django.db import migrations, models


class Migration(migrations.Migration):
    """Orders carry a currency since `order.placed.v2`; v1 orders were in euros."""

    dependencies = [
        ("projections", "0004_product_search_trigram"),
    ]

    operations = [
        migrations.AddField(
            model_name="ordersummary",
            name="currency",
            field=models.CharField(
                db_default="EUR",
                help_text=(
                    "ISO 4217 code of the order's amounts (OrderPlaced v2; "
                    "orders placed as v1 read as EUR)."
                ),
                max_length=3,
            ),
        ),
    ]
