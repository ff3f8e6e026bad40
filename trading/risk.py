"""Pre-trade risk and the margin arithmetic, over plain inputs.

Each check returns ``None`` or a coded ``Denial`` with its numbers. Denials are data, not
exceptions: the OMS records them on the order (status ``denied``). ``check_order`` runs the
whole pre-trade check, cheapest first; the first that fails decides.

The margin arithmetic (leverage, commission, the margin a lot holds, unrealized PnL, free
and required margin) has one definition here, used by the OMS and the positions flow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

from trading.accounts import effective_leverage, short_allowed
from trading.config import FeeSchedule, TierLimits
from trading.instrument import AccountType, Instrument
from trading.money import exponent, from_minor, notional_in, to_minor
from trading.orders import OrderType
from trading.positions import Position
from trading.quotes import Quote

if TYPE_CHECKING:
    from trading.orders import OrderRequest


class DenialCode(StrEnum):
    ACCOUNT_HALTED = "account_halted"
    REDUCING_ONLY = "reducing_only"
    RATE_LIMITED = "rate_limited"
    SYMBOL_RESTRICTED = "symbol_restricted"
    SYMBOL_HALTED = "symbol_halted"
    SESSION_CLOSED = "session_closed"
    NO_QUOTE = "no_quote"
    NO_CONVERSION_RATE = "no_conversion_rate"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    POSITION_LIMIT = "position_limit"
    SHORT_SALE = "short_sale_not_allowed"
    INSUFFICIENT_MARGIN = "insufficient_margin"


class AccountState(StrEnum):
    ACTIVE = "active"
    REDUCING_ONLY = "reducing_only"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class Denial:
    code: DenialCode
    message: str
    details: dict[str, str] = field(default_factory=dict)

    def reason(self) -> str:
        return f"{self.code.value}: {self.message}"


class RateLimiter:
    """At most ``limit`` orders per account in any one-second window (sliding log)."""

    __slots__ = ("_log",)

    def __init__(self) -> None:
        self._log: dict[int, deque[int]] = {}

    def allow(self, account_id: int, now_ns: int, limit: int) -> bool:
        log = self._log.get(account_id)
        if log is None or log.maxlen != max(limit, 1):
            # A new limit (SetLimits) resizes the log: one sized for a lower limit would
            # never fill up to a higher one, and allow everything.
            log = self._log[account_id] = deque(log or (), maxlen=max(limit, 1))
        horizon = now_ns - 1_000_000_000
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= limit:
            return False
        log.append(now_ns)
        return True


def check_account_state(state: AccountState, reduces_only: bool) -> Denial | None:
    if state is AccountState.HALTED:
        return Denial(DenialCode.ACCOUNT_HALTED, "the account is halted")
    if state is AccountState.REDUCING_ONLY and not reduces_only:
        return Denial(
            DenialCode.REDUCING_ONLY, "the account may only reduce positions", {"state": state}
        )
    return None


def check_order_size(
    instrument: Instrument, qty_lots: Decimal, notional: Decimal, currency: str, limits: TierLimits
) -> Denial | None:
    if qty_lots > limits.max_order_lots:
        return Denial(
            DenialCode.MAX_ORDER_QTY,
            f"{qty_lots} lots exceeds the {limits.max_order_lots} lots allowed per order",
            {"qty_lots": str(qty_lots), "max_order_lots": str(limits.max_order_lots)},
        )
    if notional > limits.max_order_notional:
        return Denial(
            DenialCode.MAX_ORDER_NOTIONAL,
            f"notional {notional:.2f} {currency} exceeds {limits.max_order_notional} {currency}",
            {"notional": f"{notional:.2f}", "max_order_notional": str(limits.max_order_notional)},
        )
    return None


def check_position(
    instrument: Instrument,
    position_lots: Decimal,
    signed_qty_lots: Decimal,
    limits: TierLimits,
    account_type: AccountType = AccountType.MARGIN,
) -> Denial | None:
    after = position_lots + signed_qty_lots
    if abs(after) > abs(position_lots) and abs(after) > limits.max_position_lots:
        return Denial(
            DenialCode.POSITION_LIMIT,
            f"position would be {after} lots, beyond the {limits.max_position_lots} lots limit",
            {"position_lots": str(position_lots), "after_lots": str(after),
             "max_position_lots": str(limits.max_position_lots)},
        )  # fmt: skip
    if after < 0 and not short_allowed(account_type, instrument):
        where = "a cash account" if account_type is AccountType.CASH else "cash"
        return Denial(
            DenialCode.SHORT_SALE,
            f"{instrument.symbol} trades on {where}: cannot sell more than the "
            f"{position_lots} held",
            {"position_lots": str(position_lots), "after_lots": str(after)},
        )
    return None


def check_margin(required: Decimal, free_margin: Decimal, currency: str) -> Denial | None:
    if required > free_margin:
        return Denial(
            DenialCode.INSUFFICIENT_MARGIN,
            f"needs {required:.2f} {currency} of margin and fees, {free_margin:.2f} free",
            {"required": f"{required:.2f}", "free_margin": f"{free_margin:.2f}"},
        )
    return None


# -- the margin arithmetic -------------------------------------------------------------------


def leverage(
    instrument: Instrument,
    tier_cap: int,
    account_type: AccountType = AccountType.MARGIN,
    override: int | None = None,
) -> int:
    """The leverage a position gets: the instrument's, capped by the account's tier and its
    own setting (``SetLimits``); 1 on a cash account or instrument."""
    return effective_leverage(instrument, tier_cap, account_type, override)


def commission(
    instrument: Instrument, qty: int, notional: Decimal, currency: str, fees: FeeSchedule
) -> int:
    """Commission in ``currency`` minor units; ``notional`` is already in ``currency``."""
    per_lot = fees.commission_per_lot.get(instrument.symbol_group)
    if per_lot is not None:
        amount = per_lot * qty / instrument.qty_scale
    else:
        amount = notional * fees.commission_bps.get(instrument.symbol_group, Decimal(0)) / 10_000
    return to_minor(amount, currency, ROUND_HALF_EVEN)


def margin_held(
    instrument: Instrument, qty: int, price: int, rate: Decimal, lev: int, currency: str
) -> int:
    """The margin a lot of ``|qty|`` at ``price`` holds, rounded up (never under-held)."""
    return to_minor(notional_in(instrument, abs(qty), price, rate) / lev, currency, ROUND_CEILING)


def position_pnl(inst: Instrument, net: int, cost: int, quote: Quote, rate: Decimal) -> Decimal:
    """Exact unrealized PnL of a net position (``cost`` = signed sum of remaining × open
    price) in the account currency, major units: a long marked at the bid, a short at the
    ask, converted at ``rate`` (account currency per unit of the quote currency)."""
    mark = quote.bid if net > 0 else quote.ask
    return Decimal(net * mark - cost) * inst.unit_value * rate


_ONE = Decimal(1)
# Decimal's default precision: a coefficient below it is exact, so are sums below it.
_EXACT_MAX = 10**28
# unit value -> (coefficient, scale): the value is coefficient / 10**scale.
_UNIT_PARTS: dict[Decimal, tuple[int, int]] = {}


def _unit_parts(unit_value: Decimal) -> tuple[int, int]:
    parts = _UNIT_PARTS.get(unit_value)
    if parts is None:
        sign, digits, exp = unit_value.as_tuple()
        coefficient = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        assert isinstance(exp, int), unit_value
        parts = (coefficient, -exp) if exp < 0 else (coefficient * 10**exp, 0)
        _UNIT_PARTS[unit_value] = parts
    return parts


def unrealized(
    positions: Iterable[Position],
    currency: str,
    instrument: Callable[[str], Instrument],
    quote: Callable[[str], Quote | None],
    rate: Callable[[str, str], Decimal | None],
) -> int:
    """Unrealized PnL of open positions in ``currency`` minor units.

    Longs are marked at the bid, shorts at the ask; a position with no quote or no
    conversion rate counts as zero. The sum is exact and rounded once. ``rate`` is not
    asked for a quote currency that is ``currency`` (the rate is 1).

    This runs on every order (the margin check), over every position of the account: while
    the terms are exact (no conversion, or a rate of 1) they add up as integers, the same
    value Decimal's sum has; from the first converted term on the sum is the Decimal one,
    term by term in the same order, so the rounding is the same to the last digit.
    """
    exact = 0  # the sum so far, as exact / 10**scale, while total is None
    scale = 0
    total: Decimal | None = None
    for pos in positions:
        net = pos.net
        if not net:
            continue
        q = quote(pos.symbol)
        inst = instrument(pos.symbol)
        r = _ONE if inst.quote == currency else rate(inst.quote, currency)
        if q is None or r is None:
            continue
        if total is None and r == 1:
            coefficient, s = _unit_parts(inst.unit_value)
            term = (net * (q.bid if net > 0 else q.ask) - pos.cost) * coefficient
            if s > scale:
                exact *= 10 ** (s - scale)
                scale = s
            elif s < scale:
                term *= 10 ** (scale - s)
            if abs(term) < _EXACT_MAX and abs(exact + term) < _EXACT_MAX:
                exact += term
                continue
        if total is None:
            total = Decimal(exact).scaleb(-scale)
        total += position_pnl(inst, net, pos.cost, q, r)
    if total is None:
        minor = _round_half_even(exact, scale - exponent(currency))
        if abs(minor) < _EXACT_MAX:
            return minor
        total = Decimal(exact).scaleb(-scale)  # beyond Decimal's precision: it raises
    return to_minor(total, currency, ROUND_HALF_EVEN)


def _round_half_even(value: int, places: int) -> int:
    """``value / 10**places`` rounded to an integer, half to even (``places`` may be < 0)."""
    if places <= 0:
        scale_up: int = 10**-places
        return value * scale_up
    unit: int = 10**places
    q, rem = divmod(value, unit)  # floor: 0 <= rem < unit
    twice = 2 * rem
    if twice > unit or (twice == unit and q & 1):
        q += 1
    return q


def free_margin(cash: int, unrealized_pnl: int) -> int:
    """Free margin in minor units: free cash plus unrealized PnL (margin held is not cash)."""
    return cash + unrealized_pnl


def equity(cash: int, margin_held: int, unrealized_pnl: int) -> int:
    """Equity in minor units: free cash, the margin held (still the client's money) and the
    open PnL."""
    return cash + margin_held + unrealized_pnl


_LEVEL_PLACES = Decimal("0.0001")
# The margin levels (percent) of a margin call and a stop-out unless configured otherwise
# (the positions flow's configuration sets them per account type).
DEFAULT_CALL_LEVEL = Decimal(100)
DEFAULT_STOP_OUT_LEVEL = Decimal(50)


def margin_level(equity_minor: int, margin_held: int) -> Decimal | None:
    """Equity over used margin, in percent to four places (half even); None when no margin
    is used (nothing can be called or stopped out)."""
    if margin_held <= 0:
        return None
    return (Decimal(equity_minor) * 100 / Decimal(margin_held)).quantize(
        _LEVEL_PLACES, ROUND_HALF_EVEN
    )


def opening_qty(net: int, signed: int) -> int:
    """The part of a signed order that opens exposure (<= 0 when it only reduces)."""
    if net and (net > 0) != (signed > 0):
        return abs(signed) - abs(net)
    return abs(signed)


def required_margin(
    instrument: Instrument,
    opening: int,
    price: int,
    rate: Decimal,
    lev: int,
    commission_minor: int,
    currency: str,
) -> Decimal:
    """Margin the opening part needs plus the commission, in ``currency`` (exact)."""
    held = notional_in(instrument, max(opening, 0), price, rate) / lev
    return held + from_minor(commission_minor, currency)


# -- the whole pre-trade check ---------------------------------------------------------------


class AccountView(Protocol):
    """What the pre-trade check reads of an account."""

    account_id: int
    currency: str
    state: AccountState
    account_type: AccountType
    positions: dict[str, Position]


# A named tuple, not a frozen dataclass: as immutable, and cheaper to make (one per order).
class Market(NamedTuple):
    """What the pre-trade check reads of the market for one order."""

    restricted: Container[str]
    halted: Container[str]
    session_open: bool
    quote: Quote | None
    rate: Decimal | None  # the instrument's quote currency -> the account's


def order_price(req: OrderRequest, quote: Quote | None) -> int | None:
    """The price an order is checked at: the touch for a market order, else its own."""
    if req.type is OrderType.MARKET:
        if quote is None:
            return None
        return quote.ask if req.side.sign > 0 else quote.bid
    if req.type is OrderType.STOP:
        return req.trigger_price
    return req.price


def check_order(
    acct: AccountView,
    inst: Instrument,
    req: OrderRequest,
    ts_ns: int,
    limits: TierLimits,
    limiter: RateLimiter,
    market: Market,
    lev: int,
    fees: FeeSchedule,
    free: Callable[[], int],
    skip: Container[str] = frozenset(),
) -> Denial | None:
    """The pre-trade check of one order; ``free`` gives the free margin (minor units).

    ``skip`` names checks (``DenialCode`` values) not to run: a house close skips the
    account's state, its limits and its margin (``trading.house.SKIPPED_CHECKS``), never the
    market's (halt, session, quote).
    """
    pos = acct.positions.get(inst.symbol)
    net = pos.net if pos else 0
    signed = req.qty * req.side.sign
    reduces = net != 0 and (net > 0) != (signed > 0) and abs(signed) <= abs(net)
    denial = check_account_state(acct.state, reduces)
    if denial and denial.code.value not in skip:
        return denial
    if "rate_limited" not in skip and not limiter.allow(
        acct.account_id, ts_ns, limits.max_orders_per_second
    ):
        return Denial(
            DenialCode.RATE_LIMITED,
            f"more than {limits.max_orders_per_second} orders in one second",
            {"max_orders_per_second": str(limits.max_orders_per_second)},
        )
    if inst.symbol in market.restricted and "symbol_restricted" not in skip:
        return Denial(DenialCode.SYMBOL_RESTRICTED, f"{inst.symbol} is restricted")
    if inst.symbol in market.halted:
        return Denial(DenialCode.SYMBOL_HALTED, f"{inst.symbol} is halted")
    if not market.session_open:
        return Denial(DenialCode.SESSION_CLOSED, f"the {inst.session} session is closed")
    price = order_price(req, market.quote)
    if price is None:
        return Denial(DenialCode.NO_QUOTE, f"no quote for {inst.symbol}")
    rate = market.rate
    if rate is None:
        return Denial(
            DenialCode.NO_CONVERSION_RATE, f"no quote converts {inst.quote} to {acct.currency}"
        )
    notional = notional_in(inst, req.qty, price, rate)
    denial = check_order_size(inst, inst.qty_from_int(req.qty), notional, acct.currency, limits)
    if denial and denial.code.value not in skip:
        return denial
    denial = check_position(
        inst, inst.qty_from_int(net), inst.qty_from_int(signed), limits, acct.account_type
    )
    if denial and denial.code.value not in skip:
        return denial
    if "insufficient_margin" in skip:
        return None
    # Only the part that opens exposure needs margin; a reduction frees it.
    opening = opening_qty(net, signed)
    if opening <= 0 and req.type is not OrderType.MARKET:
        return None
    fee = commission(inst, req.qty, notional, acct.currency, fees)
    required = required_margin(inst, opening, price, rate, lev, fee, acct.currency)
    return check_margin(required, from_minor(free(), acct.currency), acct.currency)
