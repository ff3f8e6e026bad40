"""The OMS's journal: the hash-chained audit log and the outbox of events, per batch.

It owns their numbering: the audit sequence and chain head, event ids, and each account's
event sequence (``account_seq``, gapless per account, which consumers dedupe by); events
about no client account go to the house pseudo-account 0 (``emit_house``). Records go
into the batch being prepared (``begin``); nothing here touches the store. The row formats
are in ``trading.store.repository`` and documented in docs/events.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from trading.events import HOUSE_ACCOUNT
from trading.oms.audit import GENESIS, record_hash
from trading.orders import Order, OrderEvent, OrderStatus
from trading.store.repository import Batch, audit_row, outbox_row

# json's C encoder (None where the interpreter has none).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def _encoder(sort_keys: bool) -> Callable[[Any], str]:
    """``json.JSONEncoder(separators=(",", ":"), sort_keys=...).encode``, the same text, with
    the C encoder made once: ``encode`` builds a new one on every call (4 per order)."""
    if _c_make_encoder is None:  # pragma: no cover
        return json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys).encode
    encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys)
    # As ``JSONEncoder.iterencode`` makes it, but for the markers: payloads are trees of
    # dicts, lists, str, int and None built here, with no cycle to look for.
    c_encode = _c_make_encoder(
        None, encoder.default, json.encoder.encode_basestring_ascii, None,
        encoder.key_separator, encoder.item_separator, sort_keys, False, True,
    )  # fmt: skip
    join = "".join

    def encode(obj: Any) -> str:
        return join(c_encode(obj, 0))

    return encode


_EVENT_JSON = _encoder(sort_keys=False)
_AUDIT_JSON = _encoder(sort_keys=True)
_EVENT_TYPE = {st: f"order.{st.value}" for st in OrderStatus}


class Journal:
    __slots__ = ("_batch", "actor", "audit_hash", "audit_seq", "clock", "cmd_actor",
                 "cmd_reason", "event_id", "head_exists", "seqs")  # fmt: skip

    def __init__(
        self,
        actor: str,
        clock: Callable[[], int],
        audit_head: tuple[int, str] | None,
        last_event_id: int,
        account_seqs: dict[int, int],
    ) -> None:
        self.actor = actor
        self.clock = clock
        self.audit_seq, self.audit_hash = audit_head or (0, GENESIS)
        self.head_exists = audit_head is not None
        self.event_id = last_event_id
        self.seqs = dict(account_seqs)
        self._batch = Batch()
        self.cmd_actor = self.cmd_reason = ""

    def command(self, actor: str = "", reason: str = "") -> None:
        """Audit what follows as asked by ``actor`` (empty: the OMS's own) for ``reason``:
        the dispatcher sets this around each command, so every handler's records carry the
        command's actor and reason without passing them along."""
        self.cmd_actor, self.cmd_reason = actor, reason

    def begin(self, batch: Batch) -> None:
        """Write into ``batch`` from now on."""
        batch.audit_head_exists = self.head_exists
        self._batch = batch

    def end(self) -> None:
        """Close the batch: it carries the chain head whenever it writes anything."""
        batch = self._batch
        if self.audit_seq and batch.audit_head is None and batch.row_count():
            batch.audit_head = (self.audit_seq, self.audit_hash)
        if batch.audit_head is not None:
            self.head_exists = True

    def audit(self, action: str, subject: str, payload: dict[str, Any], actor: str = "") -> None:
        seq = self.audit_seq + 1
        ts = self.clock()
        if self.cmd_reason and "reason" not in payload:
            payload = {**payload, "reason": self.cmd_reason}
        text = _AUDIT_JSON(payload)
        actor = actor or self.cmd_actor or self.actor
        digest = record_hash(seq, ts, actor, action, subject, text, self.audit_hash)
        self._batch.add(
            "audit_log", audit_row(seq, ts, actor, action, subject, text, self.audit_hash, digest)
        )
        self.audit_seq, self.audit_hash = seq, digest
        self._batch.audit_head = (seq, digest)

    def emit(
        self, account_id: int, type_: str, ts_ns: int, payload: dict[str, Any],
        order_id: int | None = None,
    ) -> int:  # fmt: skip
        """Queue an event on the account's stream; returns its event id."""
        seq = self.seqs.get(account_id, 0) + 1
        self.seqs[account_id] = seq
        self.event_id += 1
        event_id = self.event_id
        body = {"event_id": event_id, "type": type_, "account_id": account_id,
                "account_seq": seq, "ts_ns": ts_ns, **payload}  # fmt: skip
        self._batch.add(
            "outbox",
            outbox_row(event_id, account_id, seq, type_, order_id, ts_ns, _EVENT_JSON(body)),
        )
        return event_id

    def emit_house(self, type_: str, ts_ns: int, payload: dict[str, Any]) -> int:
        """Queue an event that is about no client account (a symbol halted, an end-of-day
        mark, a rollover run) on the house stream: pseudo-account ``HOUSE_ACCOUNT`` (0), with
        its own gap-free sequence, the same envelope; returns its event id."""
        return self.emit(HOUSE_ACCOUNT, type_, ts_ns, payload)

    def order_event(self, order: Order, event: OrderEvent) -> None:
        """The order's event on its account's stream: ``emit`` with the order's fields, then
        the move's own (``event.data``, which wins a clash, as a dict update does).

        Three per market order, so written straight to text: the envelope and the order's
        fields, in ``emit``'s order, by an f-string (ints as ``json`` writes them, strings
        through ``json``'s own escaping), then the move's data by the encoder. A move whose
        data names one of those fields takes the dict path, whose text this equals.
        """
        account_id = order.account_id
        seqs = self.seqs
        seq = seqs.get(account_id, 0) + 1
        seqs[account_id] = seq
        event_id = self.event_id = self.event_id + 1
        type_ = _EVENT_TYPE[event.status]
        ts_ns = event.ts_ns
        data = event.data
        if data and not data.keys().isdisjoint(_ORDER_EVENT_KEYS):
            text = _EVENT_JSON(_order_event_body(order, event, event_id, seq, type_))
        else:
            q = _json_str
            text = (
                f'{{"event_id":{event_id},"type":{q(type_)},"account_id":{account_id},'
                f'"account_seq":{seq},"ts_ns":{ts_ns},"order_id":{order.order_id},'
                f'"client_order_id":{q(order.client_order_id)},"symbol":{q(order.symbol)},'
                f'"side":{q(order.side)},"order_type":{q(order.type)},'
                f'"status":{q(order.status)},"qty":{order.qty},"filled_qty":{order.filled_qty},'
                f'"initiator":{q(order.initiator)}'
            )  # fmt: skip
            if order.house_reason is not None:
                text += f',"house_reason":{q(order.house_reason)}'
            if order.price is not None:
                text += f',"price":{order.price}'
            if order.trigger_price is not None:
                text += f',"trigger_price":{order.trigger_price}'
            text += ("," + _EVENT_JSON(data)[1:]) if data else "}"
        self._batch.rows["outbox"].append(
            outbox_row(event_id, account_id, seq, type_, order.order_id, ts_ns, text)
        )


# The keys an order event's envelope and order part may hold (``_order_event_body``).
_ORDER_EVENT_KEYS = frozenset({
    "event_id", "type", "account_id", "account_seq", "ts_ns", "order_id", "client_order_id",
    "symbol", "side", "order_type", "status", "qty", "filled_qty", "initiator", "house_reason",
    "price", "trigger_price",
})  # fmt: skip
# json's escaping of a string, quotes included (a StrEnum member as its value).
_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _order_event_body(
    order: Order, event: OrderEvent, event_id: int, seq: int, type_: str
) -> dict[str, Any]:
    """The event as ``emit`` would build it from the order's payload: the definition that
    ``Journal.order_event`` writes faster."""
    body: dict[str, Any] = {
        "event_id": event_id, "type": type_, "account_id": order.account_id,
        "account_seq": seq, "ts_ns": event.ts_ns, "order_id": order.order_id,
        "client_order_id": order.client_order_id, "symbol": order.symbol,
        "side": order.side._value_, "order_type": order.type._value_,
        "status": order.status._value_, "qty": order.qty, "filled_qty": order.filled_qty,
        "initiator": order.initiator._value_,
    }  # fmt: skip
    if order.house_reason is not None:
        body["house_reason"] = order.house_reason
    if order.price is not None:
        body["price"] = order.price
    if order.trigger_price is not None:
        body["trigger_price"] = order.trigger_price
    body.update(event.data)
    return body
