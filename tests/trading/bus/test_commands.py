"""The command wire format and its idempotency, through the in-memory client (the same
entries and decoding as the Redis bus) on both stores."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.trading.builders import Rig, destination_of, make_oms, make_rig, store_snapshot
from tests.trading.bus.builders import person, run_every_type
from trading.bus.client import InMemoryCommandClient
from trading.bus.codec import (
    BODY_MAX,
    REGISTRY,
    Context,
    decode_command,
    encode_command,
    entry_reason,
)
from trading.bus.commands import REPLY_PREFIX
from trading.bus.wire import Reply, entry_fields, parse_entry
from trading.clients import ClientKind
from trading.commands import (
    AddDestination,
    AmendOrder,
    CancelOrder,
    ClosePosition,
    CreateClient,
    DecideWithdrawal,
    Deposit,
    HaltSymbol,
    HoldWithdrawal,
    OpenAccount,
    ReleaseWithdrawal,
    RequestWithdrawal,
    SetLimits,
    SubmitOrder,
)
from trading.errors import (
    DuplicateCommandId,
    InsufficientFunds,
    InvalidText,
    MalformedCommand,
    NotFound,
)
from trading.funding import DestinationKind
from trading.instrument import AccountType
from trading.oms.host import keyed_service
from trading.oms.service import OMSService
from trading.orders import OrderStatus
from trading.store import schema as s
from trading.validate_funding import deposit


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
    assert replies["ClosePosition"].unwrap()["status"] == "filled"
    assert _count(rig, s.command_log) == len(replies)
    # Who asked is the bus client's actor on every record the commands wrote; the reasons
    # are the commands' (in the body) or the entry's.
    audit = _audit(rig)
    assert audit["client.create"][0] == "tester"
    assert audit["cash.withdrawal_held"] == ("tester", "source of funds check")
    assert audit["order.cancel"] == ("tester", "client asked")
    assert audit["symbol.halt"] == ("tester", "news")
    assert audit["account.limits"] == ("tester", "onboarding")


def _audit(rig: Rig) -> dict[str, tuple[str, str | None]]:
    """The last audit record of each action: (actor, reason)."""
    a = s.audit_log.c
    with rig.engine.connect() as conn:
        rows = conn.execute(select(a.action, a.actor, a.payload).order_by(a.seq)).all()
    return {r.action: (r.actor, json.loads(r.payload).get("reason")) for r in rows}


def test_actor_and_reason_when_the_entry_carries_them_then_the_command_and_audit_have_them(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    dest = rig.destination(1)
    wid = client.send(RequestWithdrawal(1, "USD", 1_000, dest)).unwrap()["ref"].split(":")[1]
    # No reason in the body: the entry's stands in for the hold's own.
    held = client.send_raw("HoldWithdrawal", {"withdrawal_id": int(wid)}, reason="aml review")
    assert held.unwrap() == {"ref": f"withdrawal:{wid}", "detail": "held"}
    # A reason in the body is the command's; the entry's is not used for it.
    released = client.send(ReleaseWithdrawal(int(wid), "cleared"), reason="ignored")
    assert released.ok
    cancel = client.send_raw("CancelOrder", {"account_id": 1, "order_id": 9}, reason="tidy")
    assert cancel.code == NotFound.code
    audit = _audit(rig)
    assert audit["cash.withdrawal_held"] == ("tester", "aml review")
    assert audit["cash.withdrawal_released"] == ("tester", "cleared")
    assert audit["cash.withdrawal_request"][0] == "tester"
    # The same command id with another reason is another command.
    first = client.send(HaltSymbol("XAU/USD", True), command_id="h-1", reason="news")
    other = client.send(HaltSymbol("XAU/USD", True), command_id="h-1", reason="other")
    assert first.ok and other.code == DuplicateCommandId.code


def test_entry_when_decoded_then_actor_and_reason_are_the_command_s_not_body_fields() -> None:
    from trading.catalogue import default_catalogue

    ctx = Context(default_catalogue())
    fields = entry_fields("c-1", "HaltSymbol", {"symbol": "EUR/USD", "halted": True},
                          REPLY_PREFIX + "c", "risk-desk", "news")  # fmt: skip
    env = parse_entry(fields, ctx, REPLY_PREFIX)
    assert env.command == HaltSymbol("EUR/USD", True, actor="risk-desk", reason="news")
    assert all(f.name not in ("actor", "reason") for f in REGISTRY["HaltSymbol"].fields)
    bad = {**fields, "body": json.dumps({"symbol": "EUR/USD", "halted": True, "actor": "x"})}
    with pytest.raises(MalformedCommand):
        parse_entry(bad, ctx, REPLY_PREFIX)
    with pytest.raises(InvalidText):  # the store's bounds: no surrounding space
        parse_entry({**fields, "reason": " news"}, ctx, REPLY_PREFIX)


WALLET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


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
        CancelOrder(1, 77, reason="client asked"),
        HaltSymbol("EUR/USD", False, reason="reopened"),
        person(9),
        CreateClient(
            8, ClientKind.ENTITY, "Acme GmbH", "DE", "ops@acme.de", lei="529900T8BM49AURSDO55"
        ),
        OpenAccount(9, "EUR", "retail", 9, AccountType.CASH),
        SetLimits(9, 20, Decimal("5.5"), Decimal("0.5"), Decimal("250000.25"), 7),
        deposit(
            account_id=9,
            currency="EUR",
            amount="10.50",
            method="ewallet",
            provider="paypal",
            provider_ref="pp-1",
            instrument_fingerprint="wallet:77",
        ),
        destination_of(9, "EUR"),
        AddDestination(9, DestinationKind.CRYPTO, "cold", WALLET, "USD"),
        RequestWithdrawal(9, "EUR", 1_050, 3),
        HoldWithdrawal(4, "why"),
        ReleaseWithdrawal(4, "because"),
        DecideWithdrawal(4, False, "no"),
        ClosePosition(9, "XAU/USD", 300, "stop-out"),
        ClosePosition(9, "EUR/USD", None, "stop-out"),
    ]
    for cmd in commands:
        name, body = encode_command(cmd, ctx)
        json.dumps(body)  # JSON as it is, no custom types
        back = decode_command(name, body, ctx, actor="tester", reason=entry_reason(cmd))
        assert back == dataclasses.replace(cmd, actor="tester")


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


_CLIENT = {"client_id": 5, "kind": "person", "name": "Jean Dupont", "country": "FR",
           "email": "jean@example.fr", "birth_date": "1980-01-01"}  # fmt: skip
_CARD = {"account_id": 1, "currency": "USD", "amount": "10", "method": "card",
         "provider": "adyen", "provider_ref": "p-1"}  # fmt: skip
# The new command types refuse as their edge builders do: (type, body, code).
NEW_TYPES_BAD = [
    ("CreateClient", {**_CLIENT, "birth_date": "1980-13-01"}, "invalid_client"),
    ("CreateClient", {**_CLIENT, "kind": "robot"}, "invalid_client"),
    ("CreateClient", {**_CLIENT, "client_id": "5"}, "malformed_command"),
    ("OpenAccount", {"account_id": 1, "account_type": "hedge"}, "invalid_account"),
    ("OpenAccount", {"account_id": 1, "client_id": 0}, "invalid_identifier"),
    ("SetLimits", {"account_id": 1, "leverage": 0}, "invalid_limits"),
    ("SetLimits", {"account_id": 1, "max_order_lots": "lots"}, "invalid_limits"),
    ("Deposit", {**_CARD, "instrument_fingerprint": "4111111111111111"}, "card_number_refused"),
    ("Deposit", _CARD, "invalid_funding"),  # a card deposit names its card's token
    ("Deposit", {**_CARD, "instrument_fingerprint": "t", "method": None}, "missing_field"),
    ("Deposit", {**_CARD, "instrument_fingerprint": "t", "ref": "other"}, "invalid_funding"),
    ("Deposit", {**_CARD, "instrument_fingerprint": "t", "amount": 1.5}, "invalid_input"),
    (
        "AddDestination",
        {
            "account_id": 1,
            "kind": "bank",
            "label": "b",
            "instrument": "DE00370400440532013000",
            "currency": "USD",
        },
        "invalid_iban",
    ),
    ("RequestWithdrawal", {"account_id": 1, "currency": "USD", "amount": "1"}, "missing_field"),
    ("HoldWithdrawal", {"withdrawal_id": 1}, "invalid_text"),  # no reason in body nor entry
    ("DecideWithdrawal", {"withdrawal_id": 1, "approve": "yes"}, "malformed_command"),
    ("DecideWithdrawal", {"withdrawal_id": 1, "approve": False}, "invalid_text"),
    (
        "ClosePosition",
        {"account_id": 1, "symbol": "EUR/USD", "qty": "0.015", "reason": "x"},
        "invalid_quantity",
    ),
    ("Rollover", {"now_ns": 1}, "unknown_command_type"),
]

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
        "invalid_text",
        {"body": json.dumps({"account_id": 1, "currency": "USD", "amount": "1", "ref": "r" * 65})},
    ),
    (
        "invalid_identifier",
        {"body": json.dumps({"account_id": 2**64, "currency": "USD", "amount": "1", "ref": "r"})},
    ),
    *[(c, {"type": t, "body": json.dumps(b)}) for t, b, c in NEW_TYPES_BAD],
    ("malformed_command", {"body": json.dumps({"pad": "x" * BODY_MAX})}),
]


@pytest.mark.parametrize(("code", "over"), BAD_ENTRIES)
def test_parse_entry_when_the_entry_is_bad_then_a_specific_code(
    code: str, over: dict[str, str]
) -> None:
    from trading.catalogue import default_catalogue

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


def test_funding_bad_input_when_sent_then_its_code_and_nothing_changes(
    rig: Rig, client: InMemoryCommandClient
) -> None:
    other = rig.destination(2)  # account 2's: not a destination of account 1
    card = {
        "account_id": 1, "currency": "USD", "amount": "25.00", "method": "card",
        "provider": "adyen", "provider_ref": "pay-1", "instrument_fingerprint": "tok_1",
    }  # fmt: skip
    assert client.send_raw("Deposit", card).ok
    before = _unchanged(rig)
    pan = "4111 1111 1111 1111"
    visa = {"account_id": 1, "kind": "card", "label": "visa", "currency": "USD"}
    replies = [
        client.send(RequestWithdrawal(1, "USD", 1_000, 424242)),
        client.send(RequestWithdrawal(1, "USD", 1_000, other)),
        client.send_raw("Deposit", {**card, "amount": "26.00"}),  # the reference, other terms
        client.send_raw("Deposit", {**card, "provider_ref": "p-2", "instrument_fingerprint": pan}),
        client.send_raw("Deposit", {**card, "provider_ref": pan.replace(" ", "")}),
        client.send_raw("AddDestination", {**visa, "instrument": pan}),
    ]
    assert [r.code for r in replies] == [
        "destination_not_registered", "destination_not_registered", "conflict",
        "card_number_refused", "card_number_refused", "card_number_refused",
    ]  # fmt: skip
    assert _unchanged(rig) == before
    # The same deposit again is the same deposit: answered, not booked twice.
    again = client.send_raw("Deposit", card)
    assert again.ok and _unchanged(rig) == before


def _unchanged(rig: Rig) -> dict[str, object]:
    """The store but for the command log (the engine's refusals are logged, to answer their
    retries the same)."""
    snap = store_snapshot(rig.engine)
    del snap["command_log"]
    return snap
