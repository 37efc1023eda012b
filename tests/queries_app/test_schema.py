"""The read endpoints are documented in the OpenAPI schema, which validates."""

from __future__ import annotations

import pytest
import yaml
from drf_spectacular.validation import validate_schema

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

READS = {
    "/api/products/": {200, 400, 401, 429, 503},
    "/api/products/{product_id}/": {200, 400, 401, 403, 404, 429, 503},
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


def test_past_state_parameters_and_answer_fields_are_described(client) -> None:
    schema = yaml.safe_load(client.get("/api/schema/").content)
    for path, output in (
        ("/api/orders/{order_id}/", "PastOrderOutput"),
        ("/api/products/{product_id}/", "PastProductOutput"),
    ):
        operation = schema["paths"][path]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["as_of_version"]["schema"]["minimum"] == 1
        for name in ("as_of_version", "as_of"):
            assert params[name]["description"], (path, name)
        assert "version_beyond_head" in operation["responses"]["400"]["description"]
        answer = operation["responses"]["200"]["content"]["application/json"]
        assert answer["schema"]["$ref"].endswith(f"/{output}")
        fields = schema["components"]["schemas"][output]
        assert {"as_of_version", "as_of"} <= set(fields["properties"])
        assert not {"as_of_version", "as_of"} & set(fields.get("required", []))
    products = schema["paths"]["/api/products/{product_id}/"]["get"]
    assert "staff only" in products["responses"]["403"]["description"]
