"""The WebSocket against uvicorn on a real socket, real Redis, the real store and an OMS
host: authentication, quotes (snapshot, coalesced increments, never back in time), the
caller's own portfolio and orders only, a slow client closed while another keeps up, and
resuming with ``since`` (docs/websocket.md)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyotp
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from pipelines.positions.records import Alert, AlertKind
from pipelines.positions.redis_out import CHANGES_STREAM, RiskRedisSink
from serving.api.admin import create_staff
from serving.api.ws_hub import CLOSE_SLOW, CLOSE_UNAUTHENTICATED
from serving.settings import Settings
from tests.pipelines.positions.rows import T0_NS, account, exposure, position
from tests.serving.api.conftest import PASSWORD
from tests.serving.api.live import Live, RawClient, live_api, recv_json, recv_until
from tests.trading.bus.test_host import Served, serve
from trading.bus.events import RedisStreamsPublisher
from trading.events import OutboxEvent
from trading.quotes import QUOTES_STREAM, Quote, quote_key, quote_to_fields

MakeLive = Callable[..., Live]


@pytest.fixture
def sqlite_served(tmp_path: Path, redis_url: str) -> Iterator[Served]:
    sv = serve(f"sqlite:///{tmp_path}/bourse.db", redis_url)
    yield sv
    sv.client.close()
    sv.stopped()


def _make_live(dsn: str, redis_url: str) -> Iterator[MakeLive]:
    stack = ExitStack()

    def make(**overrides: Any) -> Live:
        base: dict[str, Any] = {"api_ws_quote_interval_ms": 200, "api_ws_auth_timeout_s": 1.0,
                                "api_ws_send_timeout_s": 5.0}  # fmt: skip
        settings = Settings(dsn=dsn, redis_url=redis_url, **{**base, **overrides})
        return stack.enter_context(live_api(settings))

    yield make
    stack.close()


@pytest.fixture
def make_live(sqlite_served: Served, tmp_path: Path, redis_url: str) -> Iterator[MakeLive]:
    yield from _make_live(f"sqlite:///{tmp_path}/bourse.db", redis_url)


def _quote(r: redis.Redis, symbol: str, bid: int, ask: int, ts_ns: int) -> None:
    fields: Any = quote_to_fields(Quote(symbol, bid, ask, ts_ns), source="test")
    r.hset(quote_key(symbol), mapping=fields)
    r.xadd(QUOTES_STREAM, fields)


def _closed_code(conn: ClientConnection, timeout: float = 15) -> tuple[int | None, list[Any]]:
    """Reads until the server closes: the close code and the messages before it."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            seen.append(json.loads(conn.recv(timeout=deadline - time.monotonic())))
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), seen
    raise AssertionError(f"not closed in {timeout} s; got {seen[-3:]}")


def test_ws_when_no_live_session_then_closed_4001(make_live: MakeLive) -> None:
    live = make_live()
    live.register("alice")
    with connect(live.ws_url) as conn:  # a wrong token in the first message
        conn.send(json.dumps({"op": "auth", "token": "not-a-token"}))
        code, seen = _closed_code(conn)
    assert code == CLOSE_UNAUTHENTICATED and seen[0]["code"] == "unauthenticated"
    with connect(live.ws_url + "?token=nope") as conn:  # a wrong token in the URL
        assert _closed_code(conn)[0] == CLOSE_UNAUTHENTICATED
    with connect(live.ws_url) as conn:  # no first message within the auth timeout
        assert _closed_code(conn)[0] == CLOSE_UNAUTHENTICATED
    token = live.token("alice")
    live.http.post("/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    with connect(f"{live.ws_url}?token={token}") as conn:  # a revoked session
        assert _closed_code(conn)[0] == CLOSE_UNAUTHENTICATED
    with connect(f"{live.ws_url}?token={live.token('alice')}") as conn:  # a live one
        welcome = recv_json(conn)
        assert welcome["type"] == "welcome" and welcome["role"] == "client"
        assert "risk" not in welcome["channels"]
        conn.send(json.dumps({"op": "subscribe", "channel": "risk"}))
        assert recv_json(conn)["code"] == "forbidden"


def test_quotes_when_updates_burst_then_snapshot_first_then_coalesced_never_back_in_time(
    make_live: MakeLive, redis_url: str
) -> None:
    live = make_live()
    live.register("alice")
    r = redis.Redis.from_url(redis_url)
    _quote(r, "EUR/USD", 110_000, 110_010, 1_000)
    with live.ws(live.token("alice")) as conn:
        conn.send(json.dumps({"op": "subscribe", "channel": "quotes",
                              "symbols": ["EUR/USD", "XAU/USD"]}))  # fmt: skip
        snap = recv_json(conn)
        assert snap["type"] == "snapshot" and snap["channel"] == "quotes"
        assert snap["resumed"] is False
        eur = next(q for q in snap["quotes"] if q["symbol"] == "EUR/USD")
        assert (eur["bid"], eur["ask"], eur["ts_ns"]) == ("1.10000", "1.10010", 1_000)
        assert snap["cursor"] == r.xrevrange(QUOTES_STREAM, count=1)[0][0].decode()
        # A burst within one interval, an older quote among them, and another symbol's.
        pipe = r.pipeline()
        for ts, bid in ((2_000, 110_020), (4_000, 110_040), (1_500, 109_000), (3_000, 110_030)):
            fields: Any = quote_to_fields(Quote("EUR/USD", bid, bid + 10, ts), source="t")
            pipe.xadd(QUOTES_STREAM, fields)
        other: Any = quote_to_fields(Quote("GBP/USD", 127_000, 127_010, 5), source="t")
        pipe.xadd(QUOTES_STREAM, other)
        pipe.execute()
        last = r.xrevrange(QUOTES_STREAM, count=1)[0][0].decode()
        got = recv_until(conn, lambda m: m.get("cursor") == last)
        quotes = [q for m in got for q in m["quotes"]]
        eur_ts = [q["ts_ns"] for q in quotes if q["symbol"] == "EUR/USD"]
        assert eur_ts == sorted(eur_ts) and eur_ts[-1] == 4_000  # never back in time
        assert len(eur_ts) < 4  # coalesced: the burst is not replayed quote by quote
        assert {q["symbol"] for q in quotes} == {"EUR/USD"}  # GBP/USD was not asked for
        assert all(m["type"] == "update" for m in got)
        # The next quote comes alone, the stale one never.
        _quote(r, "EUR/USD", 110_050, 110_060, 5_000)
        nxt = recv_json(conn)
        assert [(q["symbol"], q["bid"]) for q in nxt["quotes"]] == [("EUR/USD", "1.10050")]


def _sink(redis_url: str) -> Any:
    return RiskRedisSink(redis_url).build("risk", 0, 1)


def _event(account_id: int, seq: int, event_id: int, status: str) -> OutboxEvent:
    payload = {"event_id": event_id, "type": f"order.{status}", "account_id": account_id,
               "account_seq": seq, "ts_ns": event_id, "order_id": event_id, "status": status,
               "symbol": "EUR/USD", "side": "buy", "qty": 100, "filled_qty": 0}  # fmt: skip
    return OutboxEvent(event_id, account_id, seq, f"order.{status}", event_id, event_id,
                       json.dumps(payload))  # fmt: skip


@pytest.fixture
def make_live_any_store(served: Served, store_dsn: str, redis_url: str) -> Iterator[MakeLive]:
    yield from _make_live(store_dsn, redis_url)


def test_portfolio_and_orders_when_two_clients_then_each_sees_only_its_own_accounts(
    make_live_any_store: MakeLive, redis_url: str
) -> None:
    live = make_live_any_store()
    alice, bob = live.register("alice"), live.register("bob")
    sink = _sink(redis_url)
    sink.write_batch([account(alice, cash=1), position(alice), account(bob, cash=2)])
    with live.ws(live.token("alice")) as a, live.ws(live.token("bob")) as b:
        for conn in (a, b):
            conn.send(json.dumps({"op": "subscribe", "channel": "portfolio"}))
            conn.send(json.dumps({"op": "subscribe", "channel": "orders"}))
        snap_a, orders_a = recv_json(a), recv_json(a)
        snap_b, orders_b = recv_json(b), recv_json(b)
        assert set(snap_a["accounts"]) == {str(alice)} and set(snap_b["accounts"]) == {str(bob)}
        assert snap_a["accounts"][str(alice)]["account"]["cash"] == 1
        assert set(snap_a["accounts"][str(alice)]["positions"]) == {"EUR/USD"}
        assert snap_b["accounts"][str(bob)]["positions"] == {}
        assert orders_a["accounts"] == [alice] and orders_b["accounts"] == [bob]
        # Changes and order events of both accounts: each sees its own only.
        sink.write_batch([account(bob, cash=20, ts_ns=10**19), account(alice, cash=10,
                                                                        ts_ns=10**19)])  # fmt: skip
        RedisStreamsPublisher(redis.Redis.from_url(redis_url)).publish(
            [_event(bob, 90, 10**9, "accepted"), _event(alice, 91, 10**9 + 1, "accepted")]
        )
        got_a = recv_until(a, lambda m: m["channel"] == "orders", 10)
        got_a += recv_until(a, lambda m: m["channel"] == "portfolio", 10) if not any(
            m["channel"] == "portfolio" for m in got_a) else []  # fmt: skip
        got_b = recv_until(b, lambda m: m["channel"] == "orders", 10)
        got_b += recv_until(b, lambda m: m["channel"] == "portfolio", 10) if not any(
            m["channel"] == "portfolio" for m in got_b) else []  # fmt: skip
    for got, mine, cash in ((got_a, alice, 10), (got_b, bob, 20)):
        port = [m for m in got if m["channel"] == "portfolio"]
        orders = [m for m in got if m["channel"] == "orders"]
        assert [(m["kind"], m["key"], m["data"]["cash"]) for m in port] == [
            ("account", str(mine), cash)]  # fmt: skip
        assert [(m["account_id"], m["event"]["account_id"]) for m in orders] == [(mine, mine)]


def test_slow_client_when_it_stops_reading_then_closed_4008_while_another_keeps_up(
    make_live: MakeLive, redis_url: str
) -> None:
    live = make_live(api_ws_queue=256, api_ws_send_timeout_s=10.0)
    alice = live.register("alice")
    token = live.token("alice")
    port = int(live.base.rsplit(":", 1)[1])
    slow = RawClient("127.0.0.1", port, "/v1/ws")
    slow.send(json.dumps({"op": "auth", "token": token}))
    fast = live.ws(token)
    slow.send(json.dumps({"op": "subscribe", "channel": "portfolio"}))
    fast.send(json.dumps({"op": "subscribe", "channel": "portfolio"}))
    assert recv_json(fast)["type"] == "snapshot"
    # Far more than the socket buffers hold, paced so that a client that reads keeps up
    # (read in a thread while the main one writes).
    n, chunk = 2000, 20
    got: list[dict[str, Any]] = []
    reading = threading.Thread(target=lambda: got.extend(
        recv_until(fast, lambda m: m.get("data", {}).get("cash") == n - 1, 90)))  # fmt: skip
    reading.start()
    r = redis.Redis.from_url(redis_url)
    pad = "x" * 12_000  # 24 MB in all
    for start in range(0, n, chunk):
        pipe = r.pipeline(transaction=False)
        for i in range(start, start + chunk):
            data = json.dumps({"account_id": str(alice), "cash": str(i), "ts_ns": str(i),
                               "note": pad})  # fmt: skip
            pipe.xadd(CHANGES_STREAM, {"kind": "account", "key": str(alice), "ts_ns": str(i),
                                       "data": data})  # fmt: skip
        pipe.execute()
        time.sleep(0.04)
    code, seen = slow.until_closed()  # reading again: what was sent, then the close
    slow.close()
    reading.join(90)
    assert [m["data"]["cash"] for m in got] == list(range(n))  # every one, in order
    assert code == CLOSE_SLOW
    assert seen[-1]["type"] == "closing" and seen[-1]["reason"] == "slow_consumer"
    assert [m["type"] for m in seen[:2]] == ["welcome", "snapshot"]
    assert 0 < len(seen) - 3 < n  # some were sent, the rest dropped, not delivered late
    fast.send(json.dumps({"op": "ping"}))
    assert recv_json(fast)["type"] == "pong"  # the fast one is still served
    fast.close()


def test_resume_when_since_is_in_the_stream_then_missed_changes_else_a_snapshot(
    make_live: MakeLive, redis_url: str
) -> None:
    live = make_live()
    alice = live.register("alice")
    token = live.token("alice")
    sink = _sink(redis_url)
    sink.write_batch([account(alice, cash=1, ts_ns=1)])
    with live.ws(token) as conn:
        conn.send(json.dumps({"op": "subscribe", "channel": "portfolio"}))
        snap = recv_json(conn)
        sink.write_batch([account(alice, cash=2, ts_ns=2)])
        upd = recv_json(conn)
        assert upd["data"]["cash"] == 2 and upd["cursor"] > snap["cursor"]
    # Missed while away: two changes, and a position.
    sink.write_batch([account(alice, cash=3, ts_ns=3)])
    sink.write_batch([account(alice, cash=4, ts_ns=4), position(alice, ts_ns=5)])
    with live.ws(token) as conn:
        conn.send(json.dumps({"op": "subscribe", "channel": "portfolio",
                              "since": upd["cursor"]}))  # fmt: skip
        resumed = recv_json(conn)
        assert resumed == {"type": "resumed", "channel": "portfolio", "since": upd["cursor"],
                           "cursor": upd["cursor"]}  # fmt: skip
        got = [recv_json(conn) for _ in range(3)]
        assert [(m["kind"], m["data"].get("cash")) for m in got] == [
            ("account", 3), ("account", 4), ("position", None)]  # fmt: skip
        sink.write_batch([account(alice, cash=5, ts_ns=6)])
        assert recv_json(conn)["data"]["cash"] == 5  # then live
    # Trimmed past the cursor: a fresh snapshot instead.
    r = redis.Redis.from_url(redis_url)
    r.xtrim(CHANGES_STREAM, maxlen=0)
    sink.write_batch([account(alice, cash=6, ts_ns=7)])
    with live.ws(token) as conn:
        conn.send(json.dumps({"op": "subscribe", "channel": "portfolio",
                              "since": upd["cursor"]}))  # fmt: skip
        snap = recv_json(conn)
        assert snap["type"] == "snapshot" and snap["resumed"] is False
        assert snap["accounts"][str(alice)]["account"]["cash"] == 6
        conn.send(json.dumps({"op": "subscribe", "channel": "portfolio", "since": "junk"}))
        assert recv_json(conn)["code"] == "invalid_input"


def test_messages_when_not_understood_then_an_error_and_the_connection_stays(
    make_live: MakeLive,
) -> None:
    live = make_live()
    live.register("alice")
    with live.ws(live.token("alice")) as conn:
        for bad, code in (("not json", "invalid_input"), ("[1, 2]", "invalid_input"),
                          ('{"op": "dance"}', "invalid_input"),
                          ('{"op": "subscribe", "channel": "news"}', "invalid_input"),
                          ('{"op": "subscribe", "channel": "quotes", "symbols": ["NOPE/X"]}',
                           "unknown_symbol"),
                          ('{"op": "subscribe", "channel": "orders", "since": "1-0"}',
                           "invalid_input")):  # fmt: skip
            conn.send(bad)
            msg = recv_json(conn)
            assert (msg["type"], msg["code"]) == ("error", code), bad
        conn.send(json.dumps({"op": "subscribe", "channel": "orders"}))
        snap = recv_json(conn)
        assert snap["type"] == "snapshot" and len(snap["cursor"].split(",")) == 4
        conn.send(json.dumps({"op": "unsubscribe", "channel": "orders"}))
        assert recv_json(conn) == {"type": "unsubscribed", "channel": "orders"}
        conn.send(json.dumps({"op": "ping"}))
        assert recv_json(conn) == {"type": "pong"}


def test_risk_when_staff_with_2fa_then_snapshot_and_live_exposure_accounts_alerts(
    make_live: MakeLive, sqlite_served: Served, redis_url: str
) -> None:
    live = make_live()
    made = create_staff(sqlite_served.oms.engine, username="rita", password=PASSWORD,
                        role="risk", email="", now_ns=1)  # fmt: skip
    sink = _sink(redis_url)
    sink.write_batch([exposure("EUR/USD", 500), account(3, level="120"),
                      Alert(AlertKind.MARGIN_CALL, 5, "old", account_id=3)])  # fmt: skip
    with live.ws(live.token("rita")) as conn:  # no code at login: no risk channel
        conn.send(json.dumps({"op": "subscribe", "channel": "risk"}))
        assert recv_json(conn)["code"] == "forbidden"
    with live.ws(live.token("rita", pyotp.TOTP(made.totp_secret).now())) as conn:
        conn.send(json.dumps({"op": "subscribe", "channel": "risk"}))
        snap = recv_json(conn)
        assert snap["exposure"]["EUR/USD"]["value"] == 500
        assert [a["account_id"] for a in snap["accounts"]] == [3]
        assert snap["accounts"][0]["margin_level"] == "120"
        assert [a["message"] for a in snap["alerts"]] == ["old"]
        assert snap["house"]["value"] == "500" and len(snap["cursor"].split(",")) == 2
        sink.write_batch([exposure("EUR/USD", 900, ts_ns=T0_NS + 9),
                          Alert(AlertKind.EXPOSURE_LIMIT, 6, "new", symbol="EUR/USD")])  # fmt: skip
        # Two readers (changes, alerts): the alert may come before or after the house.
        seen: set[str] = set()
        got = recv_until(conn, lambda m: seen.add(m["kind"]) or seen >= {"house", "alert"})
        kinds = {m["kind"]: m for m in got}
        assert kinds["exposure"]["data"]["value"] == 900
        assert kinds["alert"]["data"]["message"] == "new"
        assert kinds["house"]["data"]["value"] == "900"


def test_ws_when_open_past_the_idle_timeout_then_its_session_stays_live(
    make_live: MakeLive,
) -> None:
    # Arrange: sessions lapse after 1.5 s without use; a second session of the same user,
    # unused, shows the timeout does run
    live = make_live(api_session_idle_s=1.5, api_ws_session_check_s=0.2)
    live.register("alice")
    watched, unused = live.token("alice"), live.token("alice")
    conn = live.ws(watched)
    try:
        # Act: no request with either token for twice the idle timeout
        time.sleep(3.0)
        me = live.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {watched}"})
        lapsed = live.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {unused}"})
        conn.send(json.dumps({"op": "ping"}))
        # Assert
        assert me.status_code == 200, me.text
        assert lapsed.status_code == 401
        assert recv_json(conn)["type"] == "pong"
    finally:
        conn.close()


def test_ws_when_its_session_passes_its_maximum_age_then_closed_4001(make_live: MakeLive) -> None:
    # Arrange: an open connection keeps the idle timer back, never the maximum age
    live = make_live(api_session_idle_s=1.5, api_session_max_s=2.0, api_ws_session_check_s=0.2)
    live.register("alice")
    token = live.token("alice")
    conn = live.ws(token)
    # Act
    code, _seen = _closed_code(conn, timeout=15)
    # Assert
    assert code == CLOSE_UNAUTHENTICATED
    me = live.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
