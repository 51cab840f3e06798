"""The seeded fault schedule (pure logic)."""

from __future__ import annotations

import pytest

from volfefe.chaos.schedule import FAULT_KINDS, draw_schedule, parse_kinds


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    one = draw_schedule(7, 600.0, FAULT_KINDS, interval=4.0)
    assert one == draw_schedule(7, 600.0, FAULT_KINDS, interval=4.0)
    assert one != draw_schedule(8, 600.0, FAULT_KINDS, interval=4.0)
    assert len(one) == 150


def test_events_are_in_order_within_the_phase_and_a_short_run_covers_every_kind() -> None:
    events = draw_schedule(3, 45.0, FAULT_KINDS, interval=5.0)  # nine kinds, nine faults
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert events[0].at > 0 and events[-1].at < 45.0
    assert sorted(e.kind for e in events) == sorted(FAULT_KINDS)
    assert all(0 <= e.pick < 1 for e in events)


def test_a_run_shorter_than_one_interval_still_gets_one_fault() -> None:
    assert len(draw_schedule(1, 1.0, ("kill-child",), interval=5.0)) == 1


def test_fault_kinds_parse_and_unknown_kinds_are_named() -> None:
    assert parse_kinds("all") == FAULT_KINDS
    assert parse_kinds("kill-child, pause-db") == ("kill-child", "pause-db")
    with pytest.raises(ValueError, match="unknown fault kind kill-everything"):
        parse_kinds("kill-child,kill-everything")
