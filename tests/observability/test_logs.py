"""The shared logging filter masks secrets; log lines are JSON with the ids.

Plain unit tests: no database, no Redis.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from observability import context
from observability.logs import (
    CARD_MAX_DIGITS,
    CARD_MIN_DIGITS,
    ContextFilter,
    JsonFormatter,
    MaskingFilter,
    luhn_valid,
    mask_text,
)

pytestmark = [pytest.mark.unit]

CARD = "4242424242424242"


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose handler is built like settings.LOGGING's console handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.observability.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # Start with no ids bound, whatever ran before in this thread.
    with context.scope(**dict.fromkeys(context.FIELDS)):
        yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_configured_handler_masks_and_adds_the_ids() -> None:
    logging_config: dict[str, Any] = settings.LOGGING
    for handler in logging_config["handlers"].values():
        assert {"context", "mask"} <= set(handler["filters"])
    assert logging_config["filters"]["mask"]["()"].endswith("MaskingFilter")


def test_a_card_number_in_a_message_keeps_only_its_last_four_digits(log) -> None:
    logger, stream = log
    logger.info("paying with %s", CARD)
    logger.info("spaced 4242 4242 4242 4242 and dashed 4000-0000-0000-0002")
    first, second = (entry["message"] for entry in lines(stream))
    assert first == "paying with ************4242"
    assert CARD not in second
    assert "4000-0000-0000-0002" not in second
    assert second.endswith("************0002")


def test_numbers_that_are_not_card_numbers_are_left_alone() -> None:
    assert not luhn_valid("1712345678901")
    text = (
        "position 1712345678901 at 2024-05-01 id 5f0c6f9e-1c1d-4a57-9e51-3b2c1d0e9f7a"
    )
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b0"),
        ("headers={'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc'}", "eyJhbG"),
        ('{"username": "alice", "password": "alice-pass-123"}', "alice-pass"),
        ("login password=hunter2hunter2&next=/", "hunter2"),
        ("card {'number': '4242424242424242', 'cvc': '123'}", "4242424242424242"),
        ("cvc=987 exp_month=12", "987"),
        ("token: tok_5f0c6f9e1c1d4a57", "tok_5f0c"),
        ("Cookie: sessionid=abcdef0123456789abcdef", "abcdef0123"),
    ],
)
def test_credentials_and_card_data_in_text_are_masked(text: str, secret: str) -> None:
    masked = mask_text(text)
    assert secret not in masked
    assert "***" in masked or "****" in masked


def test_sensitive_fields_in_arguments_and_extra_are_masked(log) -> None:
    logger, stream = log
    payload = {"order_id": "o-1", "card": {"number": CARD, "cvc": "123"}}
    logger.info("payload %s", payload, extra={"payload": payload, "password": "pw"})
    (entry,) = lines(stream)
    text = json.dumps(entry)
    assert CARD not in text
    assert "'123'" not in text
    assert '"pw"' not in text
    assert entry["payload"] == {"order_id": "o-1", "card": "***"}
    assert entry["password"] == "***"


def test_an_exception_text_is_masked_too(log) -> None:
    logger, stream = log
    try:
        raise ValueError(f"gateway refused card {CARD}")
    except ValueError:
        logger.exception("payment failed")
    (entry,) = lines(stream)
    assert CARD not in entry["exception"]
    assert "************4242" in entry["exception"]


def test_log_lines_carry_the_request_correlation_and_command_ids(log) -> None:
    logger, stream = log
    with context.scope(request_id="req-12345678", correlation_id="c-1"):
        context.bind(command_id="cmd-1")
        logger.info("inside")
    logger.info("outside")
    inside, outside = lines(stream)
    assert inside["request_id"] == "req-12345678"
    assert inside["correlation_id"] == "c-1"
    assert inside["command_id"] == "cmd-1"
    assert inside["level"] == "INFO"
    assert inside["logger"].startswith("tests.")
    assert "request_id" not in outside
    assert "command_id" not in outside


def luhn_number(length: int) -> str:
    """Return a Luhn-valid number of `length` digits starting with 4."""
    body = "4" + "1" * (length - 2)
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def test_every_card_number_length_the_api_accepts_is_masked() -> None:
    from commands_app.serializers import CardInput

    number_field = CardInput().fields["number"]
    for length in range(CARD_MIN_DIGITS, CARD_MAX_DIGITS + 1):
        number = luhn_number(length)
        assert number_field.run_validation(number) == number
        assert mask_text(f"card {number} declined") == (
            f"card {'*' * (length - 4)}{number[-4:]} declined"
        )
    assert luhn_number(12) == "411111111117"
    assert mask_text("411111111117") == "********1117"
