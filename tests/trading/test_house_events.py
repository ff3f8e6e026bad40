"""House events (account 0, their own stream), the new event fields against docs/events.md,
and dedupe by event id: any interleaving of redeliveries yields each event once."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trading.builders import Rig, make_rig
from tests.trading.test_outbox import as_event, documented_fields, drain, outbox_rows
from trading.bus.events import HOUSE, RedisStreamsPublisher, read_events, stream_name
from trading.commands import Done, HaltSymbol, Rollover
from trading.errors import ConfigError
from trading.events import HOUSE_ACCOUNT, EventDeduper, OutboxEvent, partition_of
from trading.oms.outbox import OutboxRelay

NS = 1_000_000_000
MON_22 = 1_767_650_400 * NS  # Monday 2026-01-05 22:00 UTC, the FX cut-off


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    """A day with a halt and its resumption, fills that open, partially close and flip, and
    a rollover over the FX cut-off with a symbol left unquoted (a missed cut-off)."""
    r = make_rig(store_dsn)
    r.open_accounts(1, 2)
    r.oms.execute_one(HaltSymbol("GBP/USD", True, reason="news", actor="desk"))
    r.oms.execute_one(HaltSymbol("GBP/USD", False, reason="over"))
    for cmd in (
        r.submit(1, "a", qty="2"),
        r.submit(1, "b", side="sell", qty="1"),
        r.submit(1, "c", side="sell", qty="3"),
        r.submit(2, "d", symbol="XAU/USD"),
    ):
        r.oms.execute_one(cmd)  # fmt: skip
    r.clock.now_ns = MON_22 + NS
    assert isinstance(r.oms.execute_one(Rollover(MON_22 + NS)), Done)
    return r


def test_house_events_when_halt_and_rollover_then_on_account_zero_with_own_sequence(
    rig: Rig,
) -> None:
    rows = outbox_rows(rig.engine)
    house = [r for r in rows if r.account_id == HOUSE_ACCOUNT]

    assert [r.account_seq for r in house] == list(range(1, len(house) + 1))
    types = [r.type for r in house]
    assert types[:2] == ["symbol.halted", "symbol.resumed"]
    halted = json.loads(house[0].payload)
    assert (halted["symbol"], halted["reason"], halted["actor"]) == ("GBP/USD", "news", "desk")
    assert {"eod.marked", "eod.missed", "rollover.completed"} <= set(types)
    assert not {"position.financed", "account.opened"} & set(types)  # client events stay


def test_events_doc_when_house_financing_and_fill_fields_then_every_field_is_documented(
    rig: Rig,
) -> None:
    documented = documented_fields()
    seen: set[str] = set()
    for row in outbox_rows(rig.engine):
        seen.add(row.type)
        body: dict[str, Any] = json.loads(row.payload)
        allowed = documented["*"] | documented[row.type]
        allowed |= documented.get(row.type.split(".")[0] + ".*", set())
        assert not set(body) - allowed, (row.type, sorted(set(body) - allowed))
        for item in [*body.get("closed_lots", ()), body.get("opened_lot", {})]:
            assert not set(item) - documented[row.type], (row.type, item)
    assert {"symbol.halted", "symbol.resumed", "eod.marked", "eod.missed",
            "rollover.completed", "position.financed"} <= seen  # fmt: skip
    for kind in ("position.financing_skipped",):  # documented though this day had none
        assert kind in documented


def test_fill_event_when_flip_then_carries_closed_and_opened_lots(rig: Rig) -> None:
    fills = [json.loads(r.payload) for r in outbox_rows(rig.engine)
             if r.account_id == 1 and r.type == "order.filled"]  # fmt: skip
    opened, partial, flip = fills[0], fills[1], fills[2]

    assert opened["closed_lots"] == [] and opened["opened_lot"]["qty"] == 200
    assert opened["margin_held"] == opened["opened_lot"]["margin"] > 0
    lot_id = opened["opened_lot"]["lot_id"]
    [slice_] = partial["closed_lots"]
    assert (slice_["lot_id"], slice_["qty"], slice_["open_price"]) == (
        lot_id, 100, opened["last_price"])  # fmt: skip
    assert slice_["margin_released"] == partial["margin_released"] == opened["margin_held"] // 2
    assert "opened_lot" not in partial and partial["realized"] == slice_["realized"]
    assert flip["closed_lots"][0]["lot_id"] == lot_id and flip["opened_lot"]["qty"] == -200
    assert flip["position"] == -200 and flip["conversion_rate"] == "1"
    assert flip["venue"] == "bbook" and flip["markup_amount"] >= 0
    realized_quote = flip["closed_lots"][0]["realized_quote"]
    exact = Decimal(realized_quote) * Decimal(flip["conversion_rate"]) * 100
    assert "E" not in realized_quote and round(exact) == flip["closed_lots"][0]["realized"]


def test_relay_to_redis_when_house_events_then_on_the_house_stream_only(
    rig: Rig, redis_url: str
) -> None:
    with redis.Redis.from_url(redis_url) as client:
        relay = OutboxRelay(rig.engine, RedisStreamsPublisher(client, partitions=4))
        drain(relay)
        expected = [as_event(r) for r in outbox_rows(rig.engine)]
        house = [e.event for e in read_events(client, HOUSE, "0", 10_000)]
        parts = [e.event for p in range(4) for e in read_events(client, p, "0", 10_000)]

    assert house == [e for e in expected if e.account_id == HOUSE_ACCOUNT] != []
    assert HOUSE_ACCOUNT not in {e.account_id for e in parts}
    assert sorted(parts + house, key=lambda e: e.event_id) == expected
    assert stream_name(HOUSE) == "bourse:events:house"
    with pytest.raises(ValueError):
        stream_name(-1)


# --- dedupe by event id ---------------------------------------------------------------------


def _streams(layout: list[list[int]]) -> dict[str, list[OutboxEvent]]:
    """Events of accounts spread over streams, ids rising with commit order."""
    streams: dict[str, list[OutboxEvent]] = defaultdict(list)
    seqs: dict[int, int] = defaultdict(int)
    event_id = 0
    for accounts in layout:  # one commit: an event for each account in it
        for a in accounts:
            event_id += 1
            seqs[a] += 1
            name = "house" if a == HOUSE_ACCOUNT else str(partition_of(a, 3))
            streams[name].append(OutboxEvent(event_id, a, seqs[a], "t", None, event_id, "{}"))
    return streams


def _stream(name: str) -> str:
    return stream_name(HOUSE if name == "house" else int(name))


@settings(max_examples=150, deadline=None)
@given(
    layout=st.lists(st.lists(st.integers(0, 7), min_size=1, max_size=4), min_size=1, max_size=25),
    plan=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30), st.integers(1, 8)), max_size=60),
    per_account=st.booleans(),
)
def test_deduper_when_any_interleaving_of_redeliveries_then_each_event_once(
    layout: list[list[int]], plan: list[tuple[int, int, int]], per_account: bool
) -> None:
    streams = _streams(layout)
    names = sorted(streams)
    # Each stream as the relay can deliver it: in order, and a batch republished after a
    # failure repeats a stretch already delivered (``plan``: which stream, how far back, how
    # many new events), the streams interleaved in any order.
    sent = dict.fromkeys(names, 0)
    delivery: list[tuple[str, OutboxEvent]] = []
    for which, back, new in plan:
        name = names[which % len(names)]
        events, upto = streams[name], sent[name]
        start = max(0, upto - back)
        end = min(len(events), upto + new)
        delivery += [(name, e) for e in events[start:end]]
        sent[name] = max(upto, end)
    for name in names:  # the rest, in order
        delivery += [(name, e) for e in streams[name][sent[name] :]]
    deduper = EventDeduper(per_account=per_account)

    accepted = [e for name, e in delivery if deduper.accept(e, _stream(name))]

    everything = sorted(
        (e for events in streams.values() for e in events), key=lambda e: e.event_id
    )
    assert sorted(accepted, key=lambda e: e.event_id) == everything
    assert deduper.duplicates == len(delivery) - len(everything)
    assert deduper.gaps == 0
    restarted = EventDeduper(deduper.snapshot(), last_event_id=deduper.event_snapshot(),
                             per_account=per_account)  # fmt: skip
    assert [e for name, e in delivery if restarted.accept(e, _stream(name))] == []


def test_deduper_when_event_id_only_and_no_stream_then_refused() -> None:
    with pytest.raises(ConfigError):
        EventDeduper(per_account=False).accept(OutboxEvent(1, 1, 1, "t", None, 1, "{}"))
