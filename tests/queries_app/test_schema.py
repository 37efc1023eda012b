"""The read endpoints are documented in the OpenAPI schema, which validates."""

from __future__ import annotations

import pytest
import yaml
from drf_spectacular.validation import validate_schema

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

READS = {
    "/api/products/": {200, 400, 401, 429, 503},
    "/api/products/{product_id}/": {200, 400, 401, 404, 429, 503},
    "/api/orders/": {200, 400, 401, 429, 503},
    "/api/orders/{order_id}/": {200, 400, 401, 404, 429, 503},
    "/api/stats/sales/": {200, 400, 401, 403, 429, 503},
}


def test_every_read_endpoint_documents_parameters_answers_and_error_bodies(
    client,
) -> None:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    for path, statuses in READS.items():
        operation = schema["paths"][path]["get"]
        assert {int(code) for code in operation["responses"]} == statuses, path
        names = {p["name"] for p in operation["parameters"]}
        assert "min_position" in names
        assert "X-Read-Position" in operation["responses"]["200"]["headers"]
        behind = operation["responses"]["503"]["content"]["application/json"]
        assert behind["schema"]["$ref"].endswith("/ReadBehindOutput")
    listing = schema["paths"]["/api/orders/"]["get"]["parameters"]
    assert {"status", "created_after", "created_before", "ordering"} <= {
        p["name"] for p in listing
    }
    assert {"cursor", "page_size", "from", "to"} <= {
        p["name"] for p in schema["paths"]["/api/stats/sales/"]["get"]["parameters"]
    }
