"""One contract over every registered projector."""

from __future__ import annotations

import pytest

from projections import rebuild
from projections.models import Checkpoint, DeadLetter
from projections.registry import PROJECTOR_NAMES, projector_class

from .conftest import rows, rows_applied_twice, seed_history, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


@pytest.fixture(params=PROJECTOR_NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_applying_each_event_twice_gives_the_same_rows(store, name):
    seed_history(store)
    settle(name)
    live = rows(name)
    assert any(live.values()), "the history must give this projection rows"

    assert rows_applied_twice(name) == live


def test_replaying_from_the_start_changes_nothing(store, name):
    seed_history(store)
    settle(name)
    live = rows(name)
    Checkpoint.objects.filter(name=name).update(tx_id=0, position=0)
    settle(name)
    assert rows(name) == live


def test_an_unknown_event_type_moves_the_checkpoint(store, name):
    position = store.append_unknown()
    settle(name)
    assert Checkpoint.objects.get(name=name).position == position
    assert not DeadLetter.objects.exists()


def test_a_rebuild_gives_the_same_rows_as_the_live_projection(store, name):
    seed_history(store)
    settle(name)
    live = rows(name)
    checkpoint = Checkpoint.objects.get(name=name)
    tables = projector_class(name).tables
    indexes = {table: rebuild.index_definitions(table) for table in tables}

    rebuild.rebuild(name, batch_size=3)

    assert rows(name) == live
    assert {table: rebuild.index_definitions(table) for table in tables} == indexes
    after = Checkpoint.objects.get(name=name)
    assert (after.tx_id, after.position) == (checkpoint.tx_id, checkpoint.position)
    assert rebuild.verify(name, batch_size=4).equal
