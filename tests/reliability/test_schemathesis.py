"""Schemathesis over /api/schema/ against the real server, as a customer and as staff.

No 5xx, and every answer conforms to the schema: documented status codes,
content types and bodies. Examples per operation are bounded to keep the run
short; the server is the session's real `web` fixture.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_user
from tests.support.processes import WebServer

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

# not_a_server_error is replaced by `no_server_error`: a documented 503
# (read_model_behind after a bounded wait) is the contract, not a fault.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


ALLOWED_503 = {"read_model_behind", "service_unavailable"}


def no_server_error(status: int, text: str) -> None:
    if status == 503 and json.loads(text).get("code") in ALLOWED_503:
        return
    assert status < 500, f"{status}: {text[:500]}"


@pytest.fixture
def tokens(db: Any) -> dict[str, str]:
    from commands_app.tokens import issue_token

    users = {
        "customer": make_user("st-customer"),
        "staff": make_user("st-staff", staff=True),
    }
    return {role: issue_token(user) for role, user in users.items()}


def test_the_api_conforms_to_its_schema_for_customers_and_staff(
    tokens: dict[str, str], web: WebServer
) -> None:
    # Operations are driven one by one (schemathesis' pytest plugin does not
    # support this pytest), each with a bounded number of examples.
    schema = schemathesis.openapi.from_url(f"{web.url}/api/schema/?format=json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def conforms(case: Any) -> None:
            for role in ("customer", "staff"):
                response = case.call_and_validate(
                    base_url=web.url,
                    headers={"Authorization": f"Token {tokens[role]}"},
                    checks=CHECKS,
                    timeout=30,
                )
                no_server_error(response.status_code, response.text)

        try:
            conforms()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
