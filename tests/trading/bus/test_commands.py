"""The command wire format and its idempotency, through the in-memory client (the same
entries and decoding as the Redis bus) on both stores."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
from sqlalchemy import func, select

from tests.trading.builders import Rig, make_oms, make_rig, store_snapshot
from tests.trading.bus.builders import run_every_type
from trading.bus.client import InMemoryCommandClient
from trading.bus.codec import BODY_MAX, REGISTRY, Context, decode_command, encode_command
from trading.bus.commands import REPLY_PREFIX
from trading.bus.wire import Reply, entry_fields, parse_entry
from trading.commands import AmendOrder, CancelOrder, Deposit, OpenAccount, SubmitOrder
from trading.errors import DuplicateCommandId, InsufficientFunds, NotFound
from trading.oms.host import keyed_service
from trading.oms.service import OMSService
from trading.orders import OrderStatus
from trading.store import schema as s


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    r = make_rig(store_dsn)
    r.open_accounts(1, 2)
    return r


@pytest.fixture
def service(rig: Rig) -> Iterator[OMSService]:
    with keyed_service(rig.oms, max_batch=64) as svc:
        yield svc


@pytest.fixture
def client(service: OMSService) -> InMemoryCommandClient:
    return InMemoryCommandClient(service, actor="tester")


def _count(rig: Rig, table: object) -> int:
    with rig.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_every_command_type_when_sent_in_memory_then_each_runs_and_is_logged(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    replies = run_every_type(lambda c: client.send(c, 30), rig.catalogue, 50, "EUR/USD")
    assert replies["SubmitOrder"].unwrap()["status"] == "accepted"
    assert replies["SubmitOrder"].unwrap()["qty"] == "0.01"
    assert replies["CancelOrder"].unwrap()["status"] == "canceled"
    assert replies["HaltSymbol"].unwrap() == {"ref": "symbol:EUR/USD", "detail": "halted"}
    assert _count(rig, s.command_log) == len(REGISTRY)


def test_codec_when_each_type_is_encoded_then_decoding_gives_it_back(rig: Rig) -> None:
    order = rig.oms.execute_one(rig.submit(1, "r1", type="limit", price="1.00000"))
    ctx = Context(rig.catalogue, lambda oid: "EUR/USD" if oid == order.order_id else None)  # type: ignore[union-attr]
    commands = [
        OpenAccount(9, "EUR", "professional"),
        Deposit(9, "JPY", 1_500, "ref-9"),
        rig.submit(
            1,
            "x1",
            type="stop_limit",
            price="1.2",
            trigger_price="1.19",
            tif="gtd",
            expire_ns=2**62,
            max_slippage_ticks=3,
            side="sell",
        ),
        AmendOrder(1, order.order_id, qty=200, price=100_001),  # type: ignore[union-attr]
        CancelOrder(1, 77),
    ]
    for cmd in commands:
        name, body = encode_command(cmd, ctx)
        json.dumps(body)  # JSON as it is, no custom types
        assert decode_command(name, body, ctx) == cmd


def test_send_when_command_id_repeats_then_the_original_reply_and_one_effect(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    first = client.send(Deposit(1, "USD", 12_345, "psp-a"), command_id="dep-a")
    again = client.send(Deposit(1, "USD", 12_345, "psp-a"), command_id="dep-a")
    assert first.ok and first.text == again.text
    with rig.engine.connect() as conn:
        deposits = conn.execute(
            select(func.count()).select_from(s.ledger_txns).where(s.ledger_txns.c.ref == "psp-a")
        ).scalar_one()
    assert deposits == 1


def test_send_when_command_id_reused_with_other_terms_then_refused_and_nothing_changes(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    assert client.send(rig.submit(1, "o1", qty="0.1"), command_id="c-1").ok
    before = store_snapshot(rig.engine)
    reply = client.send(rig.submit(1, "o1", qty="0.2"), command_id="c-1")
    assert reply.code == DuplicateCommandId.code
    assert store_snapshot(rig.engine) == before
    with pytest.raises(DuplicateCommandId):
        reply.unwrap()


def test_send_when_one_id_twice_in_one_batch_then_both_get_the_one_result(
    rig: Rig, service: OMSService
) -> None:
    client = InMemoryCommandClient(service)
    gate = threading.Event()
    blocker: Future[object] = Future()
    # Hold the writer so that both sends land in one batch.
    service.submit(_Blocking(gate, blocker))  # type: ignore[arg-type]
    futures = client.submit_many(
        [rig.submit(2, "same", qty="0.1"), rig.submit(2, "same", qty="0.1")],
        command_ids=["twin", "twin"],
    )
    gate.set()
    a, b = (f.result(30) for _, f in futures)
    assert a.ok and a.text == b.text
    assert a.unwrap()["duplicate"] is False
    assert _count(rig, s.orders) == 1
    assert service.log is not None and service.log.joined == 1


class _Blocking:
    """Not a command: the OMS answers it with an error, after the test opens the gate."""

    def __init__(self, gate: threading.Event, fut: Future[object]) -> None:
        self.gate, self.fut = gate, fut

    def __repr__(self) -> str:
        self.gate.wait(30)
        return "blocking"


def test_send_when_the_oms_restarts_then_an_executed_id_answers_from_the_store(
    store_dsn: str,
) -> None:
    rig = make_rig(store_dsn)
    rig.open_accounts(1)
    with keyed_service(rig.oms) as svc:
        first = InMemoryCommandClient(svc).send(rig.submit(1, "k1"), command_id="k-1")
    restarted = make_oms(rig.engine, rig.clock)
    restarted.seed_quotes()
    with keyed_service(restarted.oms) as svc:
        again = InMemoryCommandClient(svc).send(restarted.submit(1, "k1"), command_id="k-1")
        assert svc.log is not None and svc.log.replayed == 1
    assert first.ok and again.text == first.text
    assert _count(rig, s.orders) == 1


def test_business_errors_when_sent_then_answered_with_their_code_and_logged(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    cancel = client.send(CancelOrder(1, 424242), command_id="cx")
    assert cancel.code == NotFound.code
    reply = client.send(Deposit(3, "USD", 100, "nobody"), command_id="dx")
    assert reply.code == NotFound.code
    big = client.send(
        SubmitOrder(rig.request(1, "huge", symbol="BTC/USD", qty="5")), command_id="big"
    )
    assert big.ok and big.unwrap()["status"] == OrderStatus.DENIED.value
    assert client.send(CancelOrder(1, 424242), command_id="cx").text == cancel.text
    assert _count(rig, s.command_log) == 3


# -- bad input: an error with a code, and nothing changes -------------------------------------


def _entry(**over: str) -> dict[str, str]:
    fields = entry_fields(
        "bad-1", "Deposit", {"account_id": 1, "currency": "USD", "amount": "1.00", "ref": "r"},
        REPLY_PREFIX + "c1", "tester",
    )  # fmt: skip
    fields.update(over)
    return {k: v for k, v in fields.items() if v != "<drop>"}


BAD_ENTRIES = [
    ("malformed_command", {"body": "{not json"}),
    ("malformed_command", {"body": "[1, 2]"}),
    ("unknown_command_type", {"type": "LaunchRocket"}),
    ("unknown_command_type", {"type": "x" * 500}),
    ("missing_field", {"body": json.dumps({"account_id": 1, "currency": "USD"})}),
    ("missing_field", {"type": "<drop>"}),
    ("malformed_command", {"command_id": "c" * 65}),
    ("malformed_command", {"command_id": "dup\n"}),
    ("malformed_command", {"actor": "a" * 65}),
    ("malformed_command", {"reason": "r" * 257}),
    ("malformed_command", {"reply_to": "bourse:commands"}),
    (
        "malformed_command",
        {
            "body": json.dumps(
                {"account_id": 1, "amount": "1", "ref": "r", "currency": "USD", "extra": 1}
            )
        },
    ),
    (
        "malformed_command",
        {"body": json.dumps({"account_id": "1", "currency": "USD", "amount": "1", "ref": "r"})},
    ),
    (
        "invalid_input",
        {"body": json.dumps({"account_id": 1, "currency": "USD", "amount": 1.5, "ref": "r"})},
    ),
    (
        "invalid_input",
        {"body": json.dumps({"account_id": 1, "currency": "USD", "amount": "1", "ref": "r" * 65})},
    ),
    (
        "invalid_input",
        {"body": json.dumps({"account_id": 2**64, "currency": "USD", "amount": "1", "ref": "r"})},
    ),
    ("malformed_command", {"body": json.dumps({"pad": "x" * BODY_MAX})}),
]


@pytest.mark.parametrize(("code", "over"), BAD_ENTRIES)
def test_parse_entry_when_the_entry_is_bad_then_a_specific_code(
    code: str, over: dict[str, str]
) -> None:
    from trading.instruments import default_catalogue

    with pytest.raises(Exception) as info:
        parse_entry(_entry(**over), Context(default_catalogue()), REPLY_PREFIX)
    assert getattr(info.value, "code", None) == code, info.value


def test_send_raw_when_the_body_is_bad_then_an_error_reply_and_nothing_changes(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    before = store_snapshot(rig.engine)
    replies = [
        client.send_raw(
            "SubmitOrder",
            {"account_id": 1, "client_order_id": "z", "symbol": "NOPE", "side": "buy", "qty": "1"},
        ),
        client.send_raw(
            "SubmitOrder",
            {
                "account_id": 1,
                "client_order_id": "z\n",
                "symbol": "EUR/USD",
                "side": "buy",
                "qty": "1",
            },
        ),
        client.send_raw(
            "SubmitOrder",
            {"account_id": 1, "client_order_id": "z", "symbol": "EUR/USD", "side": "buy"},
        ),
        client.send_raw("AmendOrder", {"account_id": 1, "order_id": 1, "qty": "1"}),
        client.send_raw("Nope", {}),
    ]
    assert [r.code for r in replies] == [
        "unknown_symbol", "invalid_identifier", "missing_field", "missing_field",
        "unknown_command_type",
    ]  # fmt: skip
    assert store_snapshot(rig.engine) == before


def test_reply_when_error_then_unwrap_raises_the_class_of_its_code() -> None:
    reply = Reply.from_json(
        json.dumps({"command_id": "a", "ok": False,
                    "error": {"code": "insufficient_funds", "message": "m", "details": {"x": 1}}})
    )  # fmt: skip
    with pytest.raises(InsufficientFunds) as info:
        reply.unwrap()
    assert info.value.details == {"x": 1}


@pytest.mark.parametrize("pipelined", [True, False])
def test_send_when_threads_send_every_id_twice_then_each_runs_once(
    rig: Rig, pipelined: bool
) -> None:
    with keyed_service(rig.oms, max_batch=16, pipelined=pipelined) as svc:
        client = InMemoryCommandClient(svc)
        replies: dict[str, list[Reply]] = {}
        lock = threading.Lock()

        def run(account_id: int) -> None:
            for i in range(0, 40, 4):
                ids = [f"a{account_id}-{i + j}" for j in range(4)] * 2
                cmds = [rig.submit(account_id, f"o{i + j}", qty="0.1") for j in range(4)] * 2
                for r in client.send_many(cmds, 60, command_ids=ids):
                    with lock:
                        replies.setdefault(r.command_id, []).append(r)

        threads = [threading.Thread(target=run, args=(a,)) for a in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(replies) == 80
    assert all(len(rs) == 2 and rs[0].text == rs[1].text and rs[0].ok for rs in replies.values())
    assert _count(rig, s.orders) == 80
    assert _count(rig, s.command_log) == 80
