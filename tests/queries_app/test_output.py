"""Presenters answer exactly what their output serializers would."""

from __future__ import annotations

import datetime
import json

import pytest
from rest_framework import serializers

from queries_app.orders import OrderOutput
from queries_app.output import presenter
from queries_app.products import ProductOutput
from queries_app.stats import DailySalesOutput

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


@pytest.mark.parametrize("output", [OrderOutput, ProductOutput, DailySalesOutput])
def test_a_presented_row_is_byte_for_byte_the_serializers_answer(alice, output):
    instance = {
        OrderOutput: lambda: f.order(alice, status="paid", total_cents=4321),
        ProductOutput: lambda: f.product("SKU-9", available=0),
        DailySalesOutput: lambda: f.sales_day(datetime.date(2024, 5, 2)),
    }[output]()
    rows = type(instance)._default_manager
    shown = presenter(output)
    row = rows.values(*shown.columns).get(pk=instance.pk)
    expected = output(rows.get(pk=instance.pk)).data
    assert json.dumps(shown.one(row)) == json.dumps(expected)


def test_a_field_that_is_not_a_plain_column_is_refused():
    class Computed(serializers.Serializer):
        total = serializers.SerializerMethodField()

        def get_total(self, row):
            return 1

    with pytest.raises(ValueError, match="not a plain column"):
        presenter(Computed)
