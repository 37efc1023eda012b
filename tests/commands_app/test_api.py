"""Bad input and authorization at the command API: a 4xx error body, nothing stored.

The Django test client is enough here: every request is refused before a command
row is written, so no worker is involved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib
import json
from typing import Any
from uuid import uuid4

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commands_app import eventstore
from commands_app.eventstore import NewEvents
from commands_app.models import CommandRecord, StoredEvent
from tests.support.commands import ADDRESS, GOOD_CARD, submit

from .given import paid, placed, registered

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

PRODUCT: dict[str, Any] = {
    "sku": "MUG-1",
    "name": "Mug",
    "price_cents": 1200,
    "initial_stock": 3,
}
LINE: dict[str, Any] = {"product_id": str(uuid4()), "quantity": 1}
ORDER: dict[str, Any] = {"lines": [LINE], "shipping_address": ADDRESS}


def post_raw(client, name, raw, content_type="application/json", **headers):
    return client.post(
        f"/api/commands/{name}/", data=raw, content_type=content_type, headers=headers
    )


def assert_refused(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["details"], dict | list)
    if code is not None:
        assert body["code"] == code, body
    assert CommandRecord.objects.count() == 0
    assert StoredEvent.objects.count() == 0
    return body


def nested(depth: int) -> str:
    return '{"lines": ' + "[" * depth + "]" * depth + ', "shipping_address": {}}'


MALFORMED = {
    "truncated": '{"sku": "MUG-1", ',
    "trailing garbage": json.dumps(PRODUCT) + "x",
    "single quotes": "{'sku': 'MUG-1'}",
    "invalid utf-8": b'{"sku": "\xff\xfe"}',
    "nested 11 deep": nested(11),
    "nested 100000 deep": nested(100_000),
    "NaN": json.dumps(PRODUCT).replace("1200", "NaN"),
    "Infinity": json.dumps(PRODUCT).replace("1200", "Infinity"),
    "-Infinity": json.dumps(PRODUCT).replace("1200", "-Infinity"),
    "number overflowing to infinity": json.dumps(PRODUCT).replace('"Mug"', "1e400"),
    "huge integer literal": json.dumps(PRODUCT).replace("1200", "9" * 5000),
    "escaped NUL in a value": json.dumps({**PRODUCT, "name": "Mu\x00g"}),
    "raw NUL in a value": json.dumps(PRODUCT).replace("Mug", "Mu\x00g"),
    "NUL in a key": json.dumps({**PRODUCT, "na\x00me": "x"}),
    "lone surrogate": json.dumps(PRODUCT).replace("Mug", "Mu\\ud800g"),
    "lone surrogate in a key": '{"\\udfff": 1}',
    "duplicate keys": '{"sku": "A-1", "sku": "B-1", "name": "x", '
    '"price_cents": 1, "initial_stock": 1}',
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_or_hostile_json_is_refused_and_nothing_is_stored(staff_api, raw):
    response = post_raw(staff_api, "register-product", raw)
    assert_refused(response, 400, "malformed_request")


INVALID: dict[str, tuple[str, Any]] = {
    "unknown top-level field": ("register-product", {**PRODUCT, "is_staff": True}),
    "unknown field in a nested object": (
        "place-order",
        {**ORDER, "shipping_address": {**ADDRESS, "admin": True}},
    ),
    "unknown field in a list item": (
        "place-order",
        {**ORDER, "lines": [{**LINE, "unit_price_cents": 1}]},
    ),
    "unknown field in the card": (
        "pay-order",
        {"order_id": str(uuid4()), "card": {**GOOD_CARD, "holder": "x"}},
    ),
    "string for an integer": ("register-product", {**PRODUCT, "price_cents": "abc"}),
    "boolean for an integer": ("register-product", {**PRODUCT, "initial_stock": True}),
    "fraction for an integer": ("register-product", {**PRODUCT, "price_cents": 1.5}),
    "null for a string": ("register-product", {**PRODUCT, "name": None}),
    "list for a string": ("register-product", {**PRODUCT, "sku": ["MUG-1"]}),
    "object for a string": ("register-product", {**PRODUCT, "name": {"x": 1}}),
    "object for a list": ("place-order", {**ORDER, "lines": {"0": LINE}}),
    "string for an object": ("place-order", {**ORDER, "shipping_address": "Paris"}),
    "not a uuid": ("restock-product", {"product_id": "1 OR 1=1", "quantity": 1}),
    "missing field": ("register-product", {"sku": "MUG-1"}),
    "negative stock": ("register-product", {**PRODUCT, "initial_stock": -1}),
    "price beyond the limit": ("register-product", {**PRODUCT, "price_cents": 10**30}),
    "zero quantity": ("place-order", {**ORDER, "lines": [{**LINE, "quantity": 0}]}),
    "sku with spaces": ("register-product", {**PRODUCT, "sku": "MUG 1; DROP"}),
    "empty order": ("place-order", {**ORDER, "lines": []}),
    "101 order lines": ("place-order", {**ORDER, "lines": [LINE] * 101}),
    "bad country": (
        "place-order",
        {**ORDER, "shipping_address": {**ADDRESS, "country": "France"}},
    ),
    "card failing the Luhn check": (
        "pay-order",
        {"order_id": str(uuid4()), "card": {**GOOD_CARD, "number": "4242424242424241"}},
    ),
    "expired card": (
        "pay-order",
        {"order_id": str(uuid4()), "card": {**GOOD_CARD, "exp_year": 2001}},
    ),
    "body is a list": ("register-product", [PRODUCT]),
    "body is a string": ("register-product", "MUG-1"),
    "body is null": ("register-product", None),
}


@pytest.mark.parametrize(("name", "body"), INVALID.values(), ids=INVALID.keys())
def test_invalid_bodies_are_refused_with_field_details_and_nothing_is_stored(
    staff_api, alice_api, name, body
):
    client = alice_api if name in ("place-order", "pay-order") else staff_api
    response = post_raw(client, name, json.dumps(body))
    assert_refused(response, 400, "validation_error")


def test_an_empty_body_is_refused_with_every_missing_field(staff_api):
    details = assert_refused(post_raw(staff_api, "register-product", ""), 400)[
        "details"
    ]
    assert set(details) == set(PRODUCT)


def test_unknown_fields_are_named_in_the_details(alice_api):
    body = {**ORDER, "total": 1}
    details = assert_refused(submit(alice_api, "place-order", body), 400)["details"]
    assert set(details) == {"total"}
    body = {**ORDER, "shipping_address": {**ADDRESS, "admin": True}}
    details = assert_refused(submit(alice_api, "place-order", body), 400)["details"]
    assert set(details["shipping_address"]) == {"admin"}


def test_an_import_of_more_than_50000_products_is_refused(staff_api):
    items = [
        {"sku": f"S-{i}", "name": "n", "price_cents": 1, "initial_stock": 1}
        for i in range(50_001)
    ]
    response = post_raw(staff_api, "import-products", json.dumps({"products": items}))
    assert_refused(response, 400, "validation_error")


def test_a_body_over_the_size_limit_is_refused_with_413(staff_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = json.dumps({**PRODUCT, "name": "x" * (64 * 1024)})
    response = post_raw(staff_api, "register-product", body)
    assert_refused(response, 413, "payload_too_large")


def test_a_body_over_the_default_size_limit_is_refused_with_413(staff_api):
    body = '{"products": [' + ",".join([json.dumps(PRODUCT)] * 150_000) + "]}"
    assert len(body) > 8 * 1024 * 1024
    response = post_raw(staff_api, "import-products", body)
    assert_refused(response, 413, "payload_too_large")


def test_a_body_that_is_not_json_is_refused_with_415(staff_api):
    response = post_raw(staff_api, "register-product", "sku=MUG-1", "text/plain")
    assert_refused(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "key",
    ["", "has space", "x" * 256, "tab\tinside", "caf\u00e9"],
    ids=["empty", "space", "too long", "control character", "non-ascii"],
)
def test_a_malformed_idempotency_key_is_refused(staff_api, key):
    headers = {"Idempotency-Key": key.encode("utf-8").decode("latin-1")}
    response = post_raw(staff_api, "register-product", json.dumps(PRODUCT), **headers)
    assert_refused(response, 400, "validation_error")


def test_an_unknown_command_is_refused_with_404(staff_api):
    response = post_raw(staff_api, "drop-tables", json.dumps({}))
    body = assert_refused(response, 404, "unknown_command")
    assert "place-order" in body["details"]["commands"]


# --- Authorization ---------------------------------------------------------------


def test_an_anonymous_client_is_refused_with_401(client):
    response = client.post(
        "/api/commands/place-order/", ORDER, content_type="application/json"
    )
    assert_refused(response, 401, "not_authenticated")
    assert_refused(client.get(f"/api/commands/{uuid4()}/"), 401)


def test_a_wrong_token_is_refused_with_401(client):
    response = client.post(
        "/api/commands/place-order/",
        ORDER,
        content_type="application/json",
        headers={"Authorization": "Token not-a-real-token"},
    )
    assert_refused(response, 401, "authentication_failed")


def test_a_customer_sending_a_staff_command_is_refused_with_403(alice_api):
    for name, body in [
        ("register-product", PRODUCT),
        ("restock-product", {"product_id": str(uuid4()), "quantity": 1}),
        ("import-products", {"products": [PRODUCT]}),
        ("ship-order", {"order_id": str(uuid4())}),
    ]:
        assert_refused(submit(alice_api, name, body), 403, "permission_denied")


def alices_order(alice, *, paid_too: bool = False):
    """Write an order of Alice's to the event store, as a worker would have."""
    history = placed(uuid4(), [(registered(), 1)])
    history = dataclasses.replace(history, customer_id=alice.pk)
    events = (history, paid(history)) if paid_too else (history,)
    eventstore.append([NewEvents(f"order-{history.order_id}", 0, events)], metadata={})
    return str(history.order_id)


def test_paying_or_cancelling_another_customers_order_answers_404(alice, bob_api):
    order_id = alices_order(alice)
    stored = StoredEvent.objects.count()
    for name, body in [
        ("pay-order", {"order_id": order_id, "card": GOOD_CARD}),
        ("cancel-order", {"order_id": order_id}),
    ]:
        response = submit(bob_api, name, body)
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "order_not_found"
        assert CommandRecord.objects.count() == 0
    assert StoredEvent.objects.count() == stored


def test_an_order_that_does_not_exist_answers_404(alice_api):
    response = submit(alice_api, "cancel-order", {"order_id": str(uuid4())})
    assert_refused(response, 404, "order_not_found")


def test_the_owner_may_pay_and_cancel_and_staff_may_cancel_but_not_pay(
    alice, alice_api, staff_api
):
    order_id = alices_order(alice)
    pay = {"order_id": order_id, "card": GOOD_CARD}
    assert submit(alice_api, "pay-order", pay).status_code == 202
    assert submit(alice_api, "cancel-order", {"order_id": order_id}).status_code == 202
    assert submit(staff_api, "cancel-order", {"order_id": order_id}).status_code == 202
    response = submit(staff_api, "pay-order", pay)
    assert response.status_code == 403
    assert CommandRecord.objects.count() == 3


def test_an_order_still_being_placed_belongs_to_its_sender(alice_api, bob_api):
    order_id = str(uuid4())
    placing = submit(alice_api, "place-order", {**ORDER, "order_id": order_id})
    assert placing.status_code == 202
    refused = submit(bob_api, "cancel-order", {"order_id": order_id})
    assert refused.status_code == 404
    assert submit(alice_api, "cancel-order", {"order_id": order_id}).status_code == 202
    assert CommandRecord.objects.count() == 2


def test_reading_another_users_command_status_answers_404(
    alice_api, bob_api, staff_api
):
    command = submit(alice_api, "place-order", ORDER).json()
    url = f"/api/commands/{command['id']}/"
    assert alice_api.get(url).status_code == 200
    assert staff_api.get(url).status_code == 200
    response = bob_api.get(url)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "details"}
    assert bob_api.get(f"/api/commands/{uuid4()}/").status_code == 404


def test_the_accepted_answer_carries_the_contract_fields(alice_api):
    response = submit(alice_api, "place-order", ORDER)
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "type", "status", "status_url", "aggregate_id"}
    assert body["status"] == "accepted"
    assert body["type"] == "place-order"
    assert response.headers["Location"] == body["status_url"]
    assert body["status_url"] == f"/api/commands/{body['id']}/"


def test_accepting_a_command_is_the_token_lookup_and_one_insert(alice, alice_api):
    with CaptureQueriesContext(connection) as seen:
        response = submit(alice_api, "place-order", ORDER, **{"Idempotency-Key": "k1"})
    assert response.status_code == 202
    assert [query["sql"].split()[0] for query in seen.captured_queries] == [
        "SELECT",  # the token and its user
        "INSERT",  # the command, its idempotency check and the relay's NOTIFY
    ]
    record = CommandRecord.objects.get(pk=response.json()["id"])
    assert (record.user_id, record.type, record.status) == (
        alice.pk,
        "place-order",
        "accepted",
    )
    assert (record.idempotency_key, record.publish_pending) == ("k1", True)
    assert record.created_at is not None
    assert record.enqueued_at is not None
    assert record.payload["order_id"] == response.json()["aggregate_id"]
    again = submit(alice_api, "place-order", ORDER, **{"Idempotency-Key": "k1"})
    assert (again.status_code, again.json()["id"]) == (202, str(record.id))
    assert CommandRecord.objects.count() == 1


WRONG_JSON_TYPES: dict[str, tuple[str, Any]] = {
    "number for a string": ("register-product", {**PRODUCT, "name": 123}),
    "number for a sku": ("register-product", {**PRODUCT, "sku": 12345}),
    "numeric string for an integer": (
        "register-product",
        {**PRODUCT, "price_cents": "1200"},
    ),
    "float for an integer": ("register-product", {**PRODUCT, "initial_stock": 3.0}),
    "number for a uuid": ("restock-product", {"product_id": 5, "quantity": 1}),
    "string for a card month": (
        "pay-order",
        {"order_id": str(uuid4()), "card": {**GOOD_CARD, "exp_month": "12"}},
    ),
}


@pytest.mark.parametrize(
    ("name", "body"), WRONG_JSON_TYPES.values(), ids=WRONG_JSON_TYPES.keys()
)
def test_values_of_the_wrong_json_type_are_refused_not_coerced(
    staff_api, alice_api, name, body
):
    client = alice_api if name == "pay-order" else staff_api
    details = assert_refused(submit(client, name, body), 400, "validation_error")[
        "details"
    ]
    assert details


def test_a_payments_idempotency_hash_depends_on_no_card_secret(alice, alice_api):
    """A same-key retry with the card's other digits, CVC or expiry changed is
    the same command: the stored hash cannot be searched for the card number."""
    order_id = alices_order(alice)
    key = {"Idempotency-Key": "pay-1"}
    first = submit(
        alice_api, "pay-order", {"order_id": order_id, "card": GOOD_CARD}, **key
    )
    assert first.status_code == 202, first.content
    same_last4 = {
        "number": "4242000000004242",
        "exp_month": 1,
        "exp_year": 2040,
        "cvc": "999",
    }
    again = submit(
        alice_api, "pay-order", {"order_id": order_id, "card": same_last4}, **key
    )
    assert again.status_code == 202, again.content
    assert again.json()["id"] == first.json()["id"]
    record = CommandRecord.objects.get()
    for card in (GOOD_CARD, same_last4):
        raw = json.dumps(
            ["pay-order", {"order_id": order_id, "card": card}],
            sort_keys=True,
            separators=(",", ":"),
        )
        assert (
            record.request_hash
            != hmac.new(
                settings.SECRET_KEY.encode(), raw.encode(), hashlib.sha256
            ).hexdigest()
        )
    assert "4242424242424242" not in json.dumps(record.payload)


def test_a_payment_key_reused_for_another_order_or_card_is_refused(alice, alice_api):
    order_id, other_order = alices_order(alice), alices_order(alice)
    key = {"Idempotency-Key": "pay-2"}
    body = {"order_id": order_id, "card": GOOD_CARD}
    assert submit(alice_api, "pay-order", body, **key).status_code == 202
    for other in (
        {**body, "order_id": other_order},
        {**body, "card": {**GOOD_CARD, "number": "4000000000000002"}},
    ):
        response = submit(alice_api, "pay-order", other, **key)
        assert response.status_code == 422, response.content
        assert response.json()["code"] == "idempotency_key_reused"
    assert CommandRecord.objects.count() == 1


def test_a_command_id_that_is_not_a_uuid_answers_404_with_the_error_body(alice_api):
    for url in ("/api/commands/not-a-uuid/", "/api/commands/123/"):
        response = alice_api.get(url)
        assert response.status_code == 404, response.content
        assert response.json() == {
            "code": "not_found",
            "message": "No such command.",
            "details": {},
        }


def test_stored_payment_hashes_are_rehashed_without_the_card(alice, alice_api):
    from django.apps import apps

    from commands_app import acceptance

    migration = importlib.import_module(
        "commands_app.migrations.0006_pay_order_hash_without_card"
    )
    order_id = alices_order(alice)
    body = {"order_id": order_id, "card": GOOD_CARD}
    key = {"Idempotency-Key": "pay-3"}
    first = submit(alice_api, "pay-order", body, **key)
    raw = json.dumps(["pay-order", body], sort_keys=True, separators=(",", ":"))
    old = hmac.new(settings.SECRET_KEY.encode(), raw.encode(), hashlib.sha256)
    CommandRecord.objects.update(request_hash=old.hexdigest())
    migration.rehash(apps, None)
    record = CommandRecord.objects.get()
    assert record.request_hash == acceptance.request_hash("pay-order", body)
    again = submit(alice_api, "pay-order", body, **key)
    assert again.json()["id"] == first.json()["id"]
