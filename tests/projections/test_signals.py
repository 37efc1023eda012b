"""The read side's announcements: a failing receiver is logged, never raised."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.dispatch import Signal

from projections import signals

pytestmark = pytest.mark.unit


def test_a_failing_receiver_is_logged_as_a_dropped_announcement(caplog):
    announced = Signal()
    heard: list[list[int]] = []

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("push down")

    def listening(sender: Any, *, positions: list[int], **kwargs: Any) -> None:
        heard.append(positions)

    announced.connect(listening)
    announced.connect(broken)
    with caplog.at_level(logging.WARNING, logger="projections.signals"):
        sent = signals.send(announced, "projected", positions=[3, 5])

    assert not sent

    assert heard == [[3, 5]]
    (record,) = caplog.records
    assert "projected announcement dropped" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


def test_the_write_side_listens_to_every_announcement():
    # Connected in commands_app.apps.ready(): no settings name the pushes.
    assert signals.projected.has_listeners()
    assert signals.lag_reported.has_listeners()
    assert signals.stock_changed.has_listeners()
