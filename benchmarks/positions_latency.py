"""Quote-to-margin-level and fill-to-exposure latency through the running positions flow.

Targets (issue 9): quote-to-margin-level p99 <= 100 ms with 100 k accounts holding
positions at 10 k quotes/s; fill-to-exposure-update p99 <= 100 ms at 10 k fills/s.

A throwaway Redis and the real flow, ``run_positions(spec)`` in a child process (live mode,
one process, recovery on, epoch 1 s, no store, closes not sent). Seeding, untimed: a quote
hash per symbol of ``positions_workload.SYMBOLS``, then for each of ``accounts`` accounts
``account.opened``, ``cash.deposited`` and one long opening fill (its symbol: the account id
modulo the nine) published with ``RedisStreamsPublisher``; the flow has caught up once
every account has a margin level in Redis (``BOURSE_BENCH_ACCOUNTS`` sets the count). Then,
``runs`` times on the same flow:

(a) quotes: ``quotes_per_s`` spread over the nine symbols, sent in 10 ms slices for
    ``seconds``: each an ``HSET`` of the snapshot hash and an ``XADD`` to ``bourse:quotes``
    (``quote_to_fields``), ``ts_ns`` the send time. The k-th quote of a symbol has the bid
    ``open + (k+1) ticks``, so a position row's ``mark`` says which quote it was marked at.
    A quote's latency: from its send to the first ``account`` entry on
    ``bourse:risk:changes`` of an account holding the symbol whose position row (written
    just before it, in the same transaction) is marked at that quote or a later one.
(b) fills: ``fills_per_s`` new long opening fills (the next ``account_seq`` of an account,
    round robin), sent in 10 ms slices for ``seconds``, ``ts_ns`` the send time. A fill's
    latency: from its send to the first ``exposure`` entry of its symbol whose
    ``client_net_qty`` includes it.

An entry's arrival time is its stream id (Redis's clock when the flow's sink wrote it, in
ms; same machine as the sender's clock), so a slow reader here does not add to it. What is
still unresolved ``drain_s`` after the phase ended counts at that bound (``unresolved``
says how many). Figures are medians over runs of each run's percentiles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import positions_workload as wl
from benchmarks.common import Context, Row, percentile, summarize, write_result
from pipelines.positions.spec import PositionsSpec
from trading.bus.events import RedisStreamsPublisher
from trading.bus.risk import CHANGES_STREAM, MARGIN_LEVELS
from trading.catalogue import default_catalogue
from trading.events import OutboxEvent
from trading.fields import text_of
from trading.quotes import QUOTES_STREAM, Quote, quote_key, quote_to_fields

NAME = "positions_latency"
TARGETS = {"quote_to_margin_p99_ms": 100.0, "fill_to_exposure_p99_ms": 100.0}
SLICE_S = 0.01
PCTS = (50, 90, 99)
_RUNNER = (
    "import sys; from pipelines.positions.run import run_positions; "
    "from pipelines.positions.spec import PositionsSpec; "
    "run_positions(PositionsSpec.from_json(sys.argv[1]))"
)


def _sizes(quick: bool) -> dict[str, Any]:
    env = os.environ.get("BOURSE_BENCH_ACCOUNTS")  # e.g. fewer where 100 k cannot keep up
    sizes = _default_sizes(quick)
    return {**sizes, "accounts": int(env)} if env else sizes


def _default_sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"accounts": 1_000, "quotes_per_s": 10_000, "fills_per_s": 10_000,
                "seconds": 1.0, "drain_s": 30.0, "seed_s": 120.0}  # fmt: skip
    return {"accounts": 100_000, "quotes_per_s": 10_000, "fills_per_s": 10_000,
            "seconds": 5.0, "drain_s": 60.0, "seed_s": 600.0}  # fmt: skip


class Follower(threading.Thread):
    """Reads ``bourse:risk:changes`` after ``last_id`` into a list, undecoded."""

    def __init__(self, url: str, last_id: str) -> None:
        super().__init__(name="changes-follower", daemon=True)
        self.client = redis.Redis.from_url(url)
        self.last = last_id
        self.entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            reply: Any = self.client.xread({CHANGES_STREAM: self.last}, count=20_000, block=50)
            for _name, items in reply or []:
                self.entries.extend(items)
                self.last = text_of(items[-1][0])

    def take(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        out, self.entries = self.entries, []
        return out


def _ms(stream_id: bytes) -> int:
    return int(stream_id.split(b"-", 1)[0])


class Seeded:
    """What the benchmark has sent so far: each account's symbol and next seq, the quotes'
    index per symbol, the clients' net per symbol."""

    def __init__(self, accounts: int) -> None:
        self.symbols = list(wl.SYMBOLS)
        self.accounts = accounts
        self.next_seq = dict.fromkeys(range(1, accounts + 1), 4)
        self.net = {aid: wl.SYMBOLS[self.symbol_of(aid)][1] for aid in self.next_seq}
        self.quote_k = dict.fromkeys(self.symbols, 0)
        self.client_net = {s: 0 for s in self.symbols}
        for aid, net in self.net.items():
            self.client_net[self.symbol_of(aid)] += net
        self.eid = 10 * accounts

    def symbol_of(self, aid: int) -> str:
        return self.symbols[aid % len(self.symbols)]

    def fill(self, aid: int, ts_ns: int) -> OutboxEvent:
        symbol = self.symbol_of(aid)
        price, qty = wl.SYMBOLS[symbol]
        seq = self.next_seq[aid]
        self.next_seq[aid] += 1
        self.eid += 1
        self.net[aid] += qty
        self.client_net[symbol] += qty
        oid = self.eid
        lot = {"lot_id": oid, "qty": qty, "price": price, "margin": wl.MARGIN}
        body = wl.fill_body(aid, oid, symbol, "buy", qty, price, self.net[aid], opened=lot,
                            closed=[])  # fmt: skip
        payload = {"event_id": self.eid, "type": "order.filled", "account_id": aid,
                   "account_seq": seq, "ts_ns": ts_ns, **body}  # fmt: skip
        return OutboxEvent(self.eid, aid, seq, "order.filled", oid, ts_ns, json.dumps(payload))


def seed_events(aid: int) -> list[OutboxEvent]:
    """``account.opened``, ``cash.deposited`` and one long fill in the account's symbol."""
    events = wl.account_events(aid, aid * 10)
    symbols = list(wl.SYMBOLS)
    k = aid % len(symbols)
    opening = events[2 + k]
    body = json.loads(opening.payload)
    if body["position"] < 0:  # even accounts open short in the workload: make them long
        price, qty = wl.SYMBOLS[symbols[k]]
        body.update(side="buy", position=qty, opened_lot={"lot_id": body["opened_lot"]["lot_id"],
                    "qty": qty, "price": price, "margin": wl.MARGIN})  # fmt: skip
    body["account_seq"] = 3
    fill = OutboxEvent(opening.event_id, aid, 3, opening.type, opening.order_id, opening.ts_ns,
                       json.dumps(body))  # fmt: skip
    return [*events[:2], fill]


def _pace(rate: int, seconds: float, send: Any) -> None:
    """Calls ``send(n)`` every ``SLICE_S`` with the items due by then."""
    t0 = time.perf_counter()
    done = 0
    total = int(rate * seconds)
    while done < total:
        due = min(total, int((time.perf_counter() - t0) * rate) + 1)
        if due > done:
            send(due - done)
            done = due
        time.sleep(max(0.0, t0 + done / rate - time.perf_counter()))


def quote_phase(client: redis.Redis, st: Seeded, catalogue: Any, rate: int, seconds: float
                ) -> list[tuple[str, int, int]]:  # fmt: skip
    sent: list[tuple[str, int, int]] = []
    turn = [0]

    def send(n: int) -> None:
        pipe = client.pipeline(transaction=False)
        now = time.time_ns()
        for i in range(n):
            symbol = st.symbols[turn[0] % len(st.symbols)]
            turn[0] += 1
            k = st.quote_k[symbol]
            st.quote_k[symbol] += 1
            tick = catalogue.get(symbol).tick_int
            bid = wl.SYMBOLS[symbol][0] + (k + 1) * tick
            # One ns apart: the flow's quote reader drops a quote not newer than the last.
            fields = quote_to_fields(Quote(symbol, bid, bid + 4 * tick, now + i), recv_ns=now)
            pipe.hset(quote_key(symbol), mapping=fields)  # type: ignore[arg-type]
            pipe.xadd(QUOTES_STREAM, fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
            sent.append((symbol, k, now))
        pipe.execute()

    _pace(rate, seconds, send)
    return sent


def fill_phase(pub: RedisStreamsPublisher, st: Seeded, rate: int, seconds: float
               ) -> list[tuple[str, int, int]]:  # fmt: skip
    """(symbol, the clients' net after it, send ns) per fill."""
    sent: list[tuple[str, int, int]] = []
    turn = [0]

    def send(n: int) -> None:
        now = time.time_ns()
        events = []
        for _ in range(n):
            aid = turn[0] % st.accounts + 1
            turn[0] += 1
            events.append(st.fill(aid, now))
            sent.append((st.symbol_of(aid), st.client_net[st.symbol_of(aid)], now))
        pub.publish(events)

    _pace(rate, seconds, send)
    return sent


class QuoteResolver:
    """Follows the changes: (symbol, k) -> arrival ms of the first account entry that
    reflects quote k of the symbol or a later one."""

    def __init__(self, sent: list[tuple[str, int, int]], catalogue: Any) -> None:
        self.queues: dict[str, list[int]] = {}
        for symbol, k, _ns in sent:
            self.queues.setdefault(symbol, []).append(k)
        self.cursor = dict.fromkeys(self.queues, 0)
        self.ticks = {s: catalogue.get(s).tick_int for s in self.queues}
        self.last_mark: dict[bytes, tuple[str, int]] = {}
        self.arrived: dict[tuple[str, int], int] = {}

    def feed(self, entries: list[Any]) -> int:
        for sid, fields in entries:
            kind = fields[b"kind"]
            if kind == b"position":
                data = json.loads(fields[b"data"])
                if data.get("mark") is not None:
                    self.last_mark[fields[b"key"]] = (data["symbol"], data["mark"])
            elif kind == b"account":
                got = self.last_mark.pop(fields[b"key"], None)
                if got is None or got[0] not in self.queues:
                    continue
                symbol, mark = got
                k_seen = (mark - wl.SYMBOLS[symbol][0]) // self.ticks[symbol] - 1
                queue, i = self.queues[symbol], self.cursor[symbol]
                while i < len(queue) and queue[i] <= k_seen:
                    self.arrived[(symbol, queue[i])] = _ms(sid)
                    i += 1
                self.cursor[symbol] = i
        return len(self.arrived)


class FillResolver:
    """Follows the changes: index of a fill -> arrival ms of the first exposure entry of
    its symbol whose clients' net includes it."""

    def __init__(self, sent: list[tuple[str, int, int]]) -> None:
        self.queues: dict[str, list[tuple[int, int]]] = {}
        for i, (symbol, net, _ns) in enumerate(sent):
            self.queues.setdefault(symbol, []).append((net, i))
        self.cursor = dict.fromkeys(self.queues, 0)
        self.arrived: dict[int, int] = {}

    def feed(self, entries: list[Any]) -> int:
        for sid, fields in entries:
            if fields[b"kind"] != b"exposure":
                continue
            symbol = fields[b"key"].decode()
            if symbol not in self.queues:
                continue
            net = json.loads(fields[b"data"])["client_net_qty"]
            queue, j = self.queues[symbol], self.cursor[symbol]
            while j < len(queue) and queue[j][0] <= net:
                self.arrived[queue[j][1]] = _ms(sid)
                j += 1
            self.cursor[symbol] = j
        return len(self.arrived)


def drain(follower: Follower, resolver: QuoteResolver | FillResolver, want: int,
          drain_s: float) -> float:  # fmt: skip
    """Feeds the changes to ``resolver`` until ``want`` are resolved or ``drain_s`` passed;
    the wall clock then (ms), the bound of what is left."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < drain_s:
        if resolver.feed(follower.take()) >= want:
            break
        time.sleep(0.1)
    return time.time_ns() / 1e6


def percentiles(sent_ns: list[int], arrived_ms: list[int | None], bound_ms: float
                ) -> dict[str, Any]:  # fmt: skip
    lat = sorted(max(0.0, a - ns / 1e6) if a is not None else bound_ms - ns / 1e6
                 for ns, a in zip(sent_ns, arrived_ms, strict=True))  # fmt: skip
    out: dict[str, Any] = {f"p{q:g}_ms": round(percentile(lat, q), 1) for q in PCTS}
    out["max_ms"] = round(lat[-1], 1) if lat else 0.0
    out["count"] = len(lat)
    out["unresolved"] = sum(1 for a in arrived_ms if a is None)
    return out


def start_flow(spec: PositionsSpec, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", _RUNNER, spec.to_json()],  # our own code
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def seed(client: redis.Redis, st: Seeded, catalogue: Any) -> None:
    for symbol, (price, _qty) in wl.SYMBOLS.items():
        tick = catalogue.get(symbol).tick_int
        fields = quote_to_fields(Quote(symbol, price, price + 4 * tick, time.time_ns()))
        client.hset(quote_key(symbol), mapping=fields)  # type: ignore[arg-type]
    pub = RedisStreamsPublisher(client, maxlen=10_000_000)
    chunk: list[OutboxEvent] = []
    for aid in range(1, st.accounts + 1):
        chunk += seed_events(aid)
        if len(chunk) >= 3_000:
            pub.publish(chunk)
            chunk = []
    pub.publish(chunk)


def _wait_seeded(client: redis.Redis, flow: subprocess.Popen[bytes], accounts: int,
                 limit_s: float) -> float:  # fmt: skip
    t0 = time.monotonic()
    while int(client.zcard(MARGIN_LEVELS)) < accounts:
        if flow.poll() is not None:
            raise RuntimeError(f"the positions flow exited with {flow.returncode}")
        if time.monotonic() - t0 > limit_s:
            raise RuntimeError(f"the flow took in {client.zcard(MARGIN_LEVELS)} of {accounts} "
                               f"accounts in {limit_s} s")  # fmt: skip
        time.sleep(0.2)
    return time.monotonic() - t0


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    from tests.servers import start_redis

    sizes = _sizes(ctx.quick)
    runs = 1 if ctx.quick else ctx.runs
    catalogue = default_catalogue()
    tmp = Path(tempfile.mkdtemp(prefix="bourse-pos-latency-"))
    server = start_redis()
    client = redis.Redis.from_url(server.url)
    st = Seeded(sizes["accounts"])
    spec = PositionsSpec(home=str(tmp / "home"), redis_url=server.url, send_closes=False)
    flow = None
    follower = None
    per_run: dict[str, list[dict[str, Any]]] = {"quote_to_margin": [], "fill_to_exposure": []}
    try:
        t0 = time.perf_counter()
        seed(client, st, catalogue)
        publish_s = time.perf_counter() - t0
        flow = start_flow(spec, tmp / "flow.log")
        seeded_s = _wait_seeded(client, flow, st.accounts, sizes["seed_s"])
        ctx.log(f"  {st.accounts:,} accounts seeded ({publish_s:.1f} s to publish, "
                f"{seeded_s:.1f} s for the flow to take them in)")  # fmt: skip
        last: Any = client.xinfo_stream(CHANGES_STREAM)["last-generated-id"]
        follower = Follower(server.url, text_of(last))
        follower.start()
        pub = RedisStreamsPublisher(client, maxlen=10_000_000)
        for r in range(runs):
            quotes = quote_phase(client, st, catalogue, sizes["quotes_per_s"], sizes["seconds"])
            qres = QuoteResolver(quotes, catalogue)
            bound = drain(follower, qres, len(quotes), sizes["drain_s"])
            q = percentiles([ns for _s, _k, ns in quotes],
                            [qres.arrived.get((s, k)) for s, k, _ns in quotes], bound)  # fmt: skip
            per_run["quote_to_margin"].append(q)
            fills = fill_phase(pub, st, sizes["fills_per_s"], sizes["seconds"])
            fres = FillResolver(fills)
            bound = drain(follower, fres, len(fills), sizes["drain_s"])
            f = percentiles([ns for _s, _n, ns in fills],
                            [fres.arrived.get(i) for i in range(len(fills))], bound)  # fmt: skip
            per_run["fill_to_exposure"].append(f)
            ctx.log(f"  run {r + 1}: quote->margin p50 {q['p50_ms']:,.1f} p99 {q['p99_ms']:,.1f}"
                    f" ms ({q['unresolved']} unresolved); fill->exposure p50 {f['p50_ms']:,.1f}"
                    f" p99 {f['p99_ms']:,.1f} ms ({f['unresolved']} unresolved)")  # fmt: skip
    finally:
        if follower is not None:
            follower.stop.set()
            follower.join(5)
        if flow is not None:
            flow.send_signal(signal.SIGINT)
            try:
                flow.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(flow.pid, signal.SIGKILL)
                flow.wait()
        client.close()
        server.stop()

    figures: dict[str, Any] = {}
    for key, results in per_run.items():
        fig: dict[str, Any] = {}
        for name in (*(f"p{q:g}_ms" for q in PCTS), "max_ms"):
            fig[name] = summarize([max(0.1, res[name]) for res in results], 1)
        fig["sent"] = sum(res["count"] for res in results)
        fig["unresolved"] = sum(res["unresolved"] for res in results)
        figures[key] = fig
    data: dict[str, Any] = {
        "params": {**sizes, "runs": runs, "symbols": list(wl.SYMBOLS),
                   "partitions": spec.partitions, "epoch_s": spec.epoch_s},
        "targets": TARGETS,
        "figures": figures,
        "runs": per_run,
    }  # fmt: skip
    rows = []
    for key, label in (("quote_to_margin", "quote -> margin level"),
                       ("fill_to_exposure", "fill -> exposure")):  # fmt: skip
        fig = figures[key]
        note = f"{fig['unresolved']} of {fig['sent']} unresolved" if fig["unresolved"] else ""
        rows.append(Row(NAME, "-", f"{label} p50", fig["p50_ms"], "ms", note))
        rows.append(Row(NAME, "-", f"{label} p99", fig["p99_ms"], "ms", note))
    write_result(ctx, NAME, data)
    return data, rows
