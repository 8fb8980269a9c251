"""The OPC UA simulator's users file and its event history store, without a server."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.common.events import Event

from producers.opcua_model import names
from producers.simulator.errors import SimulatorError
from producers.simulator.opcua_history import EventHistory
from producers.simulator.opcua_users import SiteUsers, load_users, parse_users


def test_users_are_name_password_lines_and_a_bad_line_is_named() -> None:
    assert parse_users("# site users\nalice:pa:ss\n\nbob: x\n", "f") == {"alice": "pa:ss", "bob": " x"}
    with pytest.raises(ValueError, match="f line 2"):
        parse_users("alice:x\nbob\n", "f")
    with pytest.raises(ValueError, match="no users"):
        parse_users("# nobody\n", "f")


def test_without_a_users_file_one_is_made_once_with_a_random_password(tmp_path: Path) -> None:
    users, path = load_users(None, tmp_path)
    again, _ = load_users(None, tmp_path)
    assert list(users) == ["collector"] and users == again and len(users["collector"]) >= 20
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(SimulatorError, match="missing.txt"):
        load_users(tmp_path / "missing.txt", tmp_path)


def test_the_user_manager_accepts_only_the_right_password_or_a_trusted_certificate() -> None:
    users = SiteUsers({"collector": "s3cret"}, frozenset())
    assert users.get_user(None, username="collector", password="s3cret") is not None
    assert users.get_user(None, username="collector", password="wrong") is None
    assert users.get_user(None, username="nobody", password="s3cret") is None
    assert users.get_user(None, certificate=b"not trusted") is None
    assert users.get_user(None) is None  # anonymous


def _event(seq: int, minute: int) -> Event:
    ev = Event()
    ev.add_property("EventId", f"id-{seq}".encode(), ua.VariantType.ByteString)
    ev.add_property("SourceNode", names.make_node_id(5, 9), ua.VariantType.NodeId)
    ev.add_property("Time", datetime(2026, 1, 1, 0, minute, tzinfo=timezone.utc), ua.VariantType.DateTime)
    ev.add_property("Message", ua.LocalizedText(f"event {seq}"), ua.VariantType.LocalizedText)
    ev.add_property("ErrorCode", f"0000-{seq:04d}", ua.VariantType.String)
    ev.add_property("ConditionName", None, ua.VariantType.String)  # unset optional field
    return ev


def test_history_keeps_events_with_their_fields_across_a_reopen(tmp_path: Path) -> None:
    async def run() -> None:
        store = EventHistory(tmp_path / "events.sqlite")
        await store.init()
        for seq in range(1, 6):
            await store.save_event(_event(seq, seq))
        await store.stop()
        store = EventHistory(tmp_path / "events.sqlite")
        await store.init()
        events, _ = await store.read_event_history(names.make_node_id(5, 9), None, None, 0, None)
        assert [getattr(e, "EventId") for e in events] == [f"id-{s}".encode() for s in range(1, 6)]
        assert getattr(events[2], "ErrorCode") == "0000-0003" and getattr(events[2], "Message").Text == "event 3"
        since, _ = await store.read_event_history(
            names.make_node_id(5, 9), datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc), None, 2, None
        )
        assert [getattr(e, "EventId") for e in since] == [b"id-3", b"id-4"]
        other, _ = await store.read_event_history(names.make_node_id(6, 9), None, None, 0, None)
        assert other == []
        await store.stop()

    asyncio.run(run())
