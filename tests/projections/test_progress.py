"""The one published "is this position applied?", as both sides ask it."""

from __future__ import annotations

import pytest

from commands_app.eventstore import Position
from commands_app.models import CommandRecord, CommandStatus
from commands_app.status import is_reflected
from projections import progress
from projections.models import Checkpoint
from projections.registry import PROJECTOR_NAMES
from tests.queries_app import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def succeeded(position: int | None) -> CommandRecord:
    return CommandRecord(status=CommandStatus.SUCCEEDED, position=position)


def test_by_default_every_registered_projection_must_have_applied_it() -> None:
    tx_id, position = f.append_event()
    f.checkpoints(tx_id, position, PROJECTOR_NAMES[:-1])
    assert not progress.is_applied(position)
    assert not is_reflected(succeeded(position))
    assert progress.applied_by(position) == {
        name: name != PROJECTOR_NAMES[-1] for name in PROJECTOR_NAMES
    }

    f.checkpoints(tx_id, position, PROJECTOR_NAMES[-1:])
    assert progress.is_applied(position)
    assert is_reflected(succeeded(position))
    assert progress.applied_by(position) == dict.fromkeys(PROJECTOR_NAMES, True)


def test_the_write_side_and_the_read_side_ask_the_same_reader_order() -> None:
    """A checkpoint further on but in an earlier transaction has not applied it."""
    tx_id, position = f.append_event()
    f.checkpoints(tx_id - 1, position + 50, PROJECTOR_NAMES)
    assert not progress.is_applied(position)
    assert not progress.is_applied(position, projections=PROJECTOR_NAMES[:1])
    assert not is_reflected(succeeded(position))
    f.checkpoints(tx_id + 1, 1, PROJECTOR_NAMES)
    assert progress.is_applied(position)
    assert is_reflected(succeeded(position))


def test_nothing_to_wait_for_is_applied_and_an_unknown_position_is_not() -> None:
    assert progress.is_applied(0)
    assert is_reflected(succeeded(None))
    assert not is_reflected(CommandRecord(status=CommandStatus.ACCEPTED, position=None))
    _tx_id, position = f.append_event()
    f.checkpoints(10**12, 10**12, PROJECTOR_NAMES)
    assert not progress.is_applied(position + 1000)
    assert progress.applied_by(position + 1000) == dict.fromkeys(PROJECTOR_NAMES, False)


def test_reached_is_the_least_checkpoint_and_nothing_without_one() -> None:
    f.checkpoints(8, 12, ("order_summary",))
    assert progress.reached(("order_summary", "daily_sales")) == Position()
    assert progress.reached(()) == Position()
    f.checkpoints(7, 90, ("daily_sales",))
    assert progress.reached(("order_summary", "daily_sales")) == Position(7, 90)


def test_the_store_head_is_the_last_position_handed_out() -> None:
    _tx_id, position = f.append_event()
    assert progress.store_head() == position


def test_a_checkpoint_row_converts_to_and_from_a_position() -> None:
    row = Checkpoint(name="order_summary", tx_id=3, position=9)
    assert row.to_position() == Position(3, 9)
    row.move_to(Position(4, 2))
    assert (row.tx_id, row.position) == (4, 2)
    assert row.to_position() == Position(4, 2)
