"""The execution venue contract: submit, cancel, replace; execution reports back.

A venue answers synchronously with the reports it can give at once (the simulated B-book
fills a market order on the spot) and delivers later ones through the handler bound with
``bind`` (a FIX session's messages, from the venue's own thread: the OMS queues them and
applies them in its writer's thread). The OMS also drives it: ``reset`` and ``restore``
when it reloads its state, ``on_quote`` and ``on_time`` as quotes and the clock move (a
venue that rests nothing returns ``[]``), ``begin_batch`` as it starts preparing a batch and
``committed`` after each batch it stored, in the same order: a venue that talks to the
outside holds a batch's requests until that batch is committed (``reset`` drops the ones
held: their batches were never stored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from trading.orders import Order
from trading.quotes import Quote


class ExecKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRIGGERED = "triggered"
    FILL = "fill"  # partial or full: the order's quantities tell which
    CANCELED = "canceled"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACED = "replaced"
    REPLACE_REJECTED = "replace_rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    exec_id: str
    order_id: int
    kind: ExecKind
    ts_ns: int
    last_qty: int = 0
    last_price: int = 0
    reason: str | None = None
    # For REPLACED: the terms now in force.
    qty: int | None = None
    price: int | None = None
    trigger_price: int | None = None
    venue: str = ""
    # The part of ``last_price`` that is the broker's markup over the raw quote (price units).
    markup: int = 0


ReportHandler = Callable[[Sequence[ExecutionReport]], None]


class Venue(Protocol):
    name: str

    def bind(self, handler: ReportHandler) -> None: ...

    def submit(self, order: Order) -> list[ExecutionReport]: ...

    def cancel(self, order: Order) -> list[ExecutionReport]: ...

    def replace(
        self, order: Order, qty: int, price: int | None, trigger_price: int | None
    ) -> list[ExecutionReport]: ...

    def begin_batch(self) -> None:
        """The OMS starts preparing a batch: requests from now on are that batch's, to be
        released at its ``committed`` (batches commit in the order they began)."""
        ...

    def reset(self) -> None:
        """Forget every working order (the OMS restores the open ones next), and every
        request held for a batch not committed."""
        ...

    def restore(self, order: Order) -> None:
        """Work an open order again after the OMS reloaded its state from the store."""
        ...

    def on_quote(self, quote: Quote) -> list[ExecutionReport]:
        """Reports for working orders a new quote triggers or fills."""
        ...

    def on_time(self, now_ns: int) -> list[ExecutionReport]:
        """Reports for working orders due to expire by ``now_ns``."""
        ...

    def committed(self, exec_ids: frozenset[str]) -> None:
        """The OMS stored a batch that applied the reports with these exec ids (the
        B-book's drop copy is written then; a venue that keeps no copy does nothing)."""
        ...
