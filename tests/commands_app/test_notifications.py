"""Order e-mails: send_for_event called in-process, Django's locmem backend.

The order events are real rows of the event store (the customer is read from
the order's first event); types that the payment process adds are built as
RecordedEvents by type name. An SMTP failure is a real refused connection.
"""

from __future__ import annotations

import io
import logging
import socket
from dataclasses import replace

import pytest
from django.core import mail

from commands_app import notifications
from commands_app.notifications import message_id, send_for_event
from tests.commands_app import recorded
from tests.commands_app.recorded import cancelled, later, paid, placed, shipped, store
from tests.conftest import make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def alice():
    user = make_user("alice")
    user.email = "alice@example.com"
    user.save()
    return user


@pytest.fixture
def staff():
    user = make_user("staff", staff=True)
    user.email = "staff@example.com"
    user.save()
    return user


def only_email() -> mail.EmailMessage:
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    return mail.outbox[0]


def html_of(message: mail.EmailMessage) -> str:
    alternatives = getattr(message, "alternatives", [])
    return next(content for content, mime in alternatives if mime == "text/html")


def test_placing_an_order_emails_the_customer_its_lines_and_total(alice) -> None:
    order = placed(alice.pk)
    (event,) = store([order], metadata={"user_id": alice.pk})

    send_for_event(event)

    email = only_email()
    assert email.to == ["alice@example.com"]
    ref = str(order.order_id).split("-")[0].upper()
    assert email.subject == f"Your order {ref} is placed"
    assert str(order.order_id) in email.body
    assert "2 x Stoneware mug (MUG-001) at EUR 12.00: EUR 24.00" in email.body
    assert "Total: EUR 69.50" in email.body
    assert "Hello Alice Martin" in email.body
    assert "EUR 69.50" in html_of(email)
    assert email.extra_headers["Message-ID"] == message_id(event)
    assert email.extra_headers["Message-ID"] == f"<{event.stream_id}.v1@example.com>"


def test_a_payment_emails_the_amount_paid(alice) -> None:
    order = placed(alice.pk)
    _, payment = store([order, paid(order)])

    send_for_event(payment)

    email = only_email()
    assert email.to == ["alice@example.com"]
    assert email.subject.startswith("Payment received for order")
    assert "We received your payment of EUR 69.50" in email.body
    assert str(order.order_id) in email.body


def test_a_captured_payment_of_the_payment_process_emails_the_amount(alice) -> None:
    order = placed(alice.pk)
    store([order])
    captured = later(
        order.order_id,
        "order.payment_captured.v1",
        3,
        {"payment_id": "5b1f", "amount_cents": 6950},
    )

    send_for_event(captured)

    email = only_email()
    assert email.to == ["alice@example.com"]
    assert "We received your payment of EUR 69.50" in email.body
    assert email.extra_headers["Message-ID"] == f"<{captured.stream_id}.v3@example.com>"


def test_a_declined_payment_tells_the_customer_nothing_was_charged(alice) -> None:
    order = placed(alice.pk)
    store([order])
    declined = later(
        order.order_id,
        "order.payment_declined.v1",
        3,
        {"payment_id": "5b1f", "code": "card_declined"},
    )

    send_for_event(declined)

    email = only_email()
    assert email.subject.startswith("Payment declined for order")
    assert "Nothing was charged" in email.body


def test_an_order_shipped_by_staff_emails_the_customer_not_the_staff(
    alice, staff
) -> None:
    order = placed(alice.pk)
    store([order, paid(order)])
    (shipping,) = store(
        [shipped(order, "1Z999AA10123456784")],
        after=2,
        metadata={"user_id": staff.pk},
    )

    send_for_event(shipping)

    email = only_email()
    assert email.to == ["alice@example.com"]
    assert email.subject.endswith("has shipped")
    assert "Tracking number: 1Z999AA10123456784" in email.body


def test_a_cancelled_paid_order_emails_the_refund_to_come(alice, staff) -> None:
    order = placed(alice.pk)
    *_, cancel = store(
        [order, paid(order), cancelled(order, by=staff.pk, refund_cents=6950)],
        metadata={"user_id": staff.pk},
    )

    send_for_event(cancel)

    email = only_email()
    assert email.to == ["alice@example.com"]
    assert email.subject.endswith("is cancelled")
    assert "(Changed my mind)" in email.body
    assert "A refund of EUR 69.50 will be made" in email.body


def test_a_refund_emails_the_amount_refunded(alice) -> None:
    order = placed(alice.pk)
    store([order, paid(order), cancelled(order, by=alice.pk, refund_cents=6950)])
    refund = later(
        order.order_id,
        "order.refunded.v1",
        4,
        {"refund_id": "9c2e", "amount_cents": 6950},
    )

    send_for_event(refund)

    email = only_email()
    assert email.subject.startswith("Refund for order")
    assert "We refunded EUR 69.50 to your card" in email.body


def test_events_that_warrant_no_email_send_none(alice) -> None:
    order = placed(alice.pk)
    store([order])
    for event in (
        later(order.order_id, "order.payment_requested.v1", 2, {"amount_cents": 1}),
        later(order.order_id, "order.something_new.v1", 3, {}),
    ):
        send_for_event(event)
    restocked = later(order.order_id, "product.restocked.v1", 1, {"quantity": 3})
    send_for_event(replace(restocked, stream_id=f"product-{order.order_id}"))

    assert mail.outbox == []


def test_a_customer_without_an_email_address_is_skipped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bob = make_user("bob")
    (event,) = store([placed(bob.pk)])

    with caplog.at_level(logging.INFO, logger="commands_app.notifications"):
        send_for_event(event)

    assert mail.outbox == []
    assert any(
        "has no e-mail address" in record.getMessage()
        and record.levelno == logging.INFO
        for record in caplog.records
    )


def test_a_customer_no_longer_there_is_skipped(alice) -> None:
    (event,) = store([placed(alice.pk)])
    alice.delete()

    send_for_event(event)

    assert mail.outbox == []


def test_a_redelivered_event_sends_the_same_message_id(alice) -> None:
    (event,) = store([placed(alice.pk)])

    send_for_event(event)
    send_for_event(event)

    first, second = mail.outbox
    assert first.extra_headers["Message-ID"] == second.extra_headers["Message-ID"]
    assert first.body == second.body


def test_a_transport_error_is_raised_for_the_caller_to_retry(alice, settings) -> None:
    # A port nothing listens on: the real SMTP backend's connection is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = 2
    (event,) = store([placed(alice.pk)])

    with pytest.raises(OSError):
        send_for_event(event)


def test_every_mapped_email_has_a_text_and_an_html_template() -> None:
    from django.template.loader import get_template

    for email in notifications.EMAILS.values():
        get_template(f"emails/{email.template}.txt")
        get_template(f"emails/{email.template}.html")


def test_amounts_are_formatted_in_euros() -> None:
    assert notifications.format_cents(6950) == "EUR 69.50"
    assert notifications.format_cents(123456789) == "EUR 1,234,567.89"
    assert notifications.format_cents(5) == "EUR 0.05"


def test_the_html_part_escapes_what_the_customer_typed(alice) -> None:
    order = replace(
        placed(alice.pk),
        shipping_address=replace(recorded.ADDRESS, name="Ann <b>Lee</b> & Co"),
    )
    (event,) = store([order])

    send_for_event(event)

    email = only_email()
    assert "Hello Ann <b>Lee</b> & Co," in email.body
    assert "Hello Ann &lt;b&gt;Lee&lt;/b&gt; &amp; Co," in html_of(email)


@pytest.mark.django_db(transaction=True)
def test_the_demo_customers_have_email_addresses() -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    User.objects.create_user("alice", password="x")  # an older seed, no address

    call_command("seed_demo", stdout=io.StringIO())

    emails = dict(User.objects.values_list("username", "email"))
    assert emails["alice"] == "alice@example.com"
    assert emails["bob"] == "bob@example.com"


def test_an_email_after_a_change_shows_the_lines_and_address_as_changed(
    alice,
) -> None:
    from commands_app.domain.events import OrderLinesChanged, ShippingAddressChanged

    order = placed(alice.pk)
    pen = order.lines[1]
    lyon = replace(recorded.ADDRESS, name="Alice M. Martin", city="Lyon")
    *_, payment = store(
        [
            order,
            OrderLinesChanged(
                order_id=order.order_id,
                lines=(replace(pen, quantity=2),),
                total_cents=2 * pen.unit_price_cents,
                changed_by=alice.pk,
            ),
            ShippingAddressChanged(
                order_id=order.order_id, shipping_address=lyon, changed_by=alice.pk
            ),
            paid(order),
        ]
    )

    send_for_event(payment)

    body = only_email().body
    assert "Fountain pen" in body
    assert "Stoneware mug" not in body
    assert "Alice M. Martin" in body
