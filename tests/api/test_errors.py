"""One exception boundary: both sides' refusals leave as {code, message, details}."""

from __future__ import annotations

import pytest
from rest_framework import exceptions

from api.errors import ApiError, api_exception_handler
from queries_app.errors import (
    NotFoundError,
    PositionBeyondHeadError,
    ReadModelBehindError,
)

pytestmark = [pytest.mark.unit]


def test_an_api_error_keeps_its_code_details_and_headers():
    error = ApiError(
        "too_many_attempts",
        "Slow down.",
        http_status=429,
        details={"retry_after_seconds": 5},
        headers={"Retry-After": "5"},
    )
    response = api_exception_handler(error, {})
    assert response is not None
    assert response.status_code == 429
    assert response.data == {
        "code": "too_many_attempts",
        "message": "Slow down.",
        "details": {"retry_after_seconds": 5},
    }
    assert response["Retry-After"] == "5"


def test_the_read_sides_refusals_are_api_errors():
    behind = ReadModelBehindError(min_position=9, position=7, retry_after=1)
    assert isinstance(behind, ApiError)
    response = api_exception_handler(behind, {})
    assert response is not None
    assert response.status_code == 503
    assert response.data["code"] == "read_model_behind"
    assert response.data["details"] == {"min_position": 9, "position": 7}
    assert response["Retry-After"] == "1"

    missing = api_exception_handler(NotFoundError("order_not_found", "No.", id=3), {})
    assert missing is not None
    assert (missing.status_code, missing.data["details"]) == (404, {"id": 3})

    beyond = api_exception_handler(PositionBeyondHeadError(min_position=9, head=4), {})
    assert beyond is not None
    assert beyond.status_code == 400
    assert not beyond.has_header("Retry-After")


def test_an_exception_without_an_api_code_gets_the_generic_mapping():
    response = api_exception_handler(exceptions.NotFound(), {})
    assert response is not None
    assert response.data == {
        "code": "not_found",
        "message": "Not found.",
        "details": {},
    }
