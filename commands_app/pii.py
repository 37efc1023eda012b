"""Personal data in events: encrypted per customer, erased by destroying the key.

Envelope encryption: each customer has a random data key (AES-256-GCM) in
`customer_keys`, stored wrapped by a master key from the environment
(`PII_MASTER_KEY`; older ones in `PII_PREVIOUS_MASTER_KEYS` stay readable until
`rotate_pii_master_key` re-wraps every data key). The fields an event type
declares personal (`Event.personal_fields`) are sealed at the event store's
boundary: each non-empty string in them is replaced by its ciphertext, and a
`$pii` entry records the customer and the sealed fields. Reads reveal them
again; once the customer is forgotten the key is gone and each such string
reads as `ERASED`, so aggregates still load and projections get the same
erased values whenever they read.

Events stored in clear before this existed have no `$pii` entry and are read
as they are; forgetting their customer rewrites their personal fields in place
(`erase_clear_events`), the event store's single documented exception to
append-only (migration 0011, docs/operations.md).

Keys never leave this module: they are not logged, cached across calls, put
in Redis or in a Celery message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from api.prepared import fetch_all, placeholders

from .domain.events import EVENT_TYPES, Event

DB_ALIAS = "default"
ERASED = "[erased]"
MARK = "$pii"
FORMAT = 1
_NONCE_BYTES = 12

# Stored type names whose personal fields no current class declares any more
# (an older version of an event, read through an upcaster): still erased.
LEGACY_PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # Listed here too, so that they stay covered when a `.v2` replaces the class.
    "order.placed.v1": ("shipping_address",),
    "order.cancelled.v1": ("reason",),
}


def personal_fields(type_name: str) -> tuple[str, ...]:
    """Return the personal fields of events stored under `type_name`."""
    cls = EVENT_TYPES.get(type_name)
    if cls is not None and cls.personal_fields:
        return cls.personal_fields
    return LEGACY_PERSONAL_FIELDS.get(type_name, ())


def personal_type_names() -> list[str]:
    """Return every stored type name that has personal fields."""
    names = {name for name in EVENT_TYPES if personal_fields(name)}
    return sorted(names | set(LEGACY_PERSONAL_FIELDS))


# --- Master keys -------------------------------------------------------------------


@dataclass(frozen=True)
class MasterKey:
    id: str
    aead: AESGCM


def master_key_id(raw: bytes) -> str:
    """Return a master key's fingerprint (stored beside what it wraps)."""
    return hashlib.sha256(b"cqrs-pii-master-key:" + raw).hexdigest()[:16]


def _decode(text: str, setting: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # The value itself is never repeated in the message.
        raise ImproperlyConfigured(
            f"{setting} must be 32 random bytes in URL-safe base64."
        )
    return raw


@functools.lru_cache(maxsize=4)
def _keyring(current: str, previous: tuple[str, ...]) -> tuple[str, dict[str, AESGCM]]:
    if not current:
        raise ImproperlyConfigured("PII_MASTER_KEY is not set.")
    raws = [_decode(current, "PII_MASTER_KEY")] + [
        _decode(text, "PII_PREVIOUS_MASTER_KEYS") for text in previous if text
    ]
    keys = {master_key_id(raw): AESGCM(raw) for raw in raws}
    return master_key_id(raws[0]), keys


def keyring() -> tuple[str, dict[str, AESGCM]]:
    """Return the current master key's id and every readable master key by id."""
    return _keyring(
        str(settings.PII_MASTER_KEY),
        tuple(str(key) for key in settings.PII_PREVIOUS_MASTER_KEYS),
    )


def _key_aad(customer_id: int) -> bytes:
    return f"cqrs-pii-data-key:{customer_id}".encode()


def wrap(customer_id: int, data_key: bytes) -> tuple[str, bytes]:
    """Wrap a data key with the current master key; return (master id, blob)."""
    current, keys = keyring()
    nonce = os.urandom(_NONCE_BYTES)
    return current, nonce + keys[current].encrypt(
        nonce, data_key, _key_aad(customer_id)
    )


def unwrap(customer_id: int, master_id: str, blob: bytes) -> bytes:
    """Unwrap a data key; raise ImproperlyConfigured if its master key is absent."""
    _current, keys = keyring()
    master = keys.get(master_id)
    if master is None:
        raise ImproperlyConfigured(
            f"customer {customer_id}'s data key is wrapped by master key "
            f"{master_id}, which neither PII_MASTER_KEY nor "
            "PII_PREVIOUS_MASTER_KEYS holds."
        )
    blob = bytes(blob)
    return master.decrypt(
        blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _key_aad(customer_id)
    )


# --- Data keys ----------------------------------------------------------------------

# A customer's data key, unwrapped for one read or one append; None: forgotten.
DataKeys = dict[int, AESGCM | None]


_KEYS_SELECT = "SELECT customer_id, master_key_id, wrapped_key FROM customer_keys "
_KEYS_SQL = _KEYS_SELECT + "WHERE customer_id = ANY(%s)"
# Up to this many customers (an append's, an effect's, a small round's), one
# parameter each, so that the statement is planned once per connection
# (`api.prepared.placeholders`). More (a rebuild's chunk) take the array.
_KEYS_ONE_BY_ONE = 8


@functools.lru_cache(maxsize=_KEYS_ONE_BY_ONE)
def _keys_sql(count: int) -> str:
    return _KEYS_SELECT + f"WHERE customer_id IN ({placeholders(count)})"


def fetch_keys(customer_ids: Iterable[int]) -> DataKeys:
    """Return the data keys of customers; a forgotten (or keyless) one is None."""
    return _read_keys(sorted(set(customer_ids)))[0]


def _read_keys(wanted: list[int]) -> tuple[DataKeys, set[int]]:
    """Return the customers' keys and the customers without a row at all."""
    keys: DataKeys = dict.fromkeys(wanted)
    if not wanted:
        return keys, set()
    if len(wanted) <= _KEYS_ONE_BY_ONE:
        rows = fetch_all(DB_ALIAS, _keys_sql(len(wanted)), wanted)
    else:
        rows = fetch_all(DB_ALIAS, _KEYS_SQL, [wanted])
    for customer_id, master_id, blob in rows:
        if blob is not None:
            keys[customer_id] = AESGCM(unwrap(customer_id, master_id, blob))
    return keys, set(wanted) - {row[0] for row in rows}


def ensure_keys(customer_ids: Iterable[int]) -> DataKeys:
    """Return the data keys of customers, creating the missing ones.

    Runs in the appending transaction: a key created for events that roll
    back rolls back with them. Two appends creating one customer's key meet
    at the primary key; the second waits, inserts nothing and reads the
    first's. A forgotten customer gets no new key (None). One round trip
    when every key exists (the usual case).
    """
    keys, missing = _read_keys(sorted(set(customer_ids)))
    if not missing:
        return keys
    with connections[DB_ALIAS].cursor() as cursor:
        for customer_id in sorted(missing):
            master_id, blob = wrap(customer_id, AESGCM.generate_key(bit_length=256))
            cursor.execute(
                "INSERT INTO customer_keys (customer_id, master_key_id, wrapped_key) "
                "VALUES (%s, %s, %s) ON CONFLICT (customer_id) DO NOTHING",
                [customer_id, master_id, blob],
            )
    return {**keys, **_read_keys(sorted(missing))[0]}


# --- Sealing and revealing -----------------------------------------------------------


def _aad(customer_id: int) -> bytes:
    return f"cqrs-pii:{customer_id}".encode()


def _map_strings(value: Any, function: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return function(value) if value else value
    if isinstance(value, dict):
        return {key: _map_strings(item, function) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, function) for item in value]
    return value


def erase_value(value: Any) -> Any:
    """Return `value` with every non-empty string replaced by ERASED."""
    return _map_strings(value, lambda _text: ERASED)


def seal(
    data: dict[str, Any], fields: Sequence[str], customer_id: int, key: AESGCM | None
) -> dict[str, Any]:
    """Return `data` with its personal `fields` encrypted (erased if no key)."""
    sealed = dict(data)
    if key is None:
        for name in fields:
            sealed[name] = erase_value(data[name])
        return sealed
    aad = _aad(customer_id)

    def encrypt(text: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        blob = nonce + key.encrypt(nonce, text.encode(), aad)
        return base64.b64encode(blob).decode()

    for name in fields:
        sealed[name] = _map_strings(data[name], encrypt)
    sealed[MARK] = {"v": FORMAT, "customer": customer_id, "fields": list(fields)}
    return sealed


def is_sealed(data: Any) -> bool:
    return isinstance(data, dict) and MARK in data


def reveal(data: dict[str, Any], keys: DataKeys) -> dict[str, Any]:
    """Return sealed `data` decrypted, or erased where its key is gone."""
    mark = data[MARK]
    customer_id = int(mark["customer"])
    key = keys.get(customer_id)
    revealed = {name: value for name, value in data.items() if name != MARK}
    aad = _aad(customer_id)

    def decrypt(text: str) -> str:
        assert key is not None
        blob = base64.b64decode(text)
        try:
            return key.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad).decode()
        except InvalidTag:
            raise ValueError(
                f"a personal field of customer {customer_id} does not "
                "decrypt with their key"
            ) from None

    for name in mark["fields"]:
        if name in revealed:
            revealed[name] = (
                erase_value(revealed[name])
                if key is None
                else _map_strings(revealed[name], decrypt)
            )
    return revealed


def reveal_all(datas: Sequence[Any]) -> list[Any]:
    """Return each event payload revealed, with one key lookup for them all."""
    customers = {int(data[MARK]["customer"]) for data in datas if is_sealed(data)}
    if not customers:
        return list(datas)
    keys = fetch_keys(customers)
    return [reveal(data, keys) if is_sealed(data) else data for data in datas]


def reveal_one(data: Any) -> Any:
    return reveal_all([data])[0]


# --- Appending ----------------------------------------------------------------------


@dataclass(frozen=True)
class Personal:
    """An event being appended that has personal fields, at `index` of the append."""

    index: int
    stream_id: str
    event: Event
    data: dict[str, Any]


def seal_appended(personal: Sequence[Personal]) -> dict[int, dict[str, Any]]:
    """Return the sealed payload of each appended event with personal fields.

    The customer is the event's `customer_id`, else the customer of its stream
    (the `customer_id` of the stream's first event, in this append or stored).
    """
    owners: dict[str, int] = {}
    for item in personal:
        owner = item.data.get("customer_id")
        if isinstance(owner, int):
            owners.setdefault(item.stream_id, owner)
    unknown = sorted({item.stream_id for item in personal} - set(owners))
    owners.update(stream_owners(unknown))
    keys = ensure_keys(owners.values())
    sealed = {}
    for item in personal:
        owner = owners.get(item.stream_id)
        if owner is None:
            # No customer to key it by: nothing could ever erase it, so it is
            # not stored at all.
            sealed[item.index] = seal(item.data, item.event.personal_fields, 0, None)
            continue
        sealed[item.index] = seal(
            item.data, item.event.personal_fields, owner, keys.get(owner)
        )
    return sealed


def stream_owners(stream_ids: Sequence[str]) -> dict[str, int]:
    """Return the customer of each stream whose first event names one."""
    if not stream_ids:
        return {}
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT stream_id, (data->>'customer_id')::bigint FROM events "
            "WHERE stream_id = ANY(%s) AND version = 1 AND data ? 'customer_id'",
            [list(stream_ids)],
        )
        return {row[0]: row[1] for row in cursor.fetchall()}


# --- Forgetting ---------------------------------------------------------------------


def shred(customer_id: int) -> None:
    """Destroy a customer's data key, leaving a tombstone (in the caller's transaction).

    PostgreSQL keeps the old row version until VACUUM; it holds the key only
    wrapped by the master key (docs/operations.md says what else to expire).
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "INSERT INTO customer_keys (customer_id, master_key_id, wrapped_key, "
            "forgotten_at) VALUES (%s, '', NULL, now()) "
            "ON CONFLICT (customer_id) DO UPDATE SET wrapped_key = NULL, "
            "master_key_id = '', "
            "forgotten_at = coalesce(customer_keys.forgotten_at, now())",
            [customer_id],
        )


def customer_streams(customer_id: int) -> list[str]:
    """Return the streams whose first event names the customer (their orders)."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT stream_id FROM events WHERE version = 1 "
            "AND data->>'customer_id' = %s ORDER BY stream_id",
            [str(customer_id)],
        )
        return [row[0] for row in cursor.fetchall()]


def erase_clear_events(stream_ids: Sequence[str]) -> int:
    """Erase personal fields stored in clear in these streams; return how many events.

    Only events appended before personal data was encrypted have any. The
    UPDATE passes the append-only trigger because this transaction says it
    erases personal data (SET LOCAL), and only `data` may change.
    """
    if not stream_ids:
        return 0
    changed = 0
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT position, type, data FROM events WHERE stream_id = ANY(%s) "
            "AND type = ANY(%s) AND NOT data ? %s ORDER BY position",
            [list(stream_ids), personal_type_names(), MARK],
        )
        rows = cursor.fetchall()
        for position, type_name, data in rows:
            data = json.loads(data) if isinstance(data, str) else data
            erased = dict(data)
            for name in personal_fields(type_name):
                if name in erased:
                    erased[name] = erase_value(erased[name])
            if erased == data:
                continue
            if not changed:
                cursor.execute("SET LOCAL cqrs.erase_personal_data = 'on'")
            cursor.execute(
                "UPDATE events SET data = %s::jsonb WHERE position = %s",
                [json.dumps(erased), position],
            )
            changed += 1
        if changed:
            cursor.execute("SET LOCAL cqrs.erase_personal_data = 'off'")
    return changed


# --- Rotation -----------------------------------------------------------------------


def rotate(*, batch: int = 500) -> int:
    """Re-wrap every data key not wrapped by the current master key; return how many.

    Short transactions of `batch` keys each; run it after setting the new
    PII_MASTER_KEY and moving the old one to PII_PREVIOUS_MASTER_KEYS.
    """
    from django.db import transaction

    current, _keys = keyring()
    total = 0
    while True:
        with (
            transaction.atomic(using=DB_ALIAS),
            connections[DB_ALIAS].cursor() as cursor,
        ):
            cursor.execute(
                "SELECT customer_id, master_key_id, wrapped_key FROM customer_keys "
                "WHERE wrapped_key IS NOT NULL AND master_key_id <> %s "
                "ORDER BY customer_id LIMIT %s FOR UPDATE SKIP LOCKED",
                [current, batch],
            )
            rows = cursor.fetchall()
            for customer_id, master_id, blob in rows:
                new_id, new_blob = wrap(
                    customer_id, unwrap(customer_id, master_id, blob)
                )
                cursor.execute(
                    "UPDATE customer_keys SET master_key_id = %s, wrapped_key = %s "
                    "WHERE customer_id = %s",
                    [new_id, new_blob, customer_id],
                )
        total += len(rows)
        if len(rows) < batch:
            return total


def keys_not_wrapped_by(master_id: str) -> int:
    """Count the data keys that another master key wraps (rotation left to do)."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM customer_keys "
            "WHERE wrapped_key IS NOT NULL AND master_key_id <> %s",
            [master_id],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0
