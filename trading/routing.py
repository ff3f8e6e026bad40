"""Routing rules: which book (A, B or a split) and which liquidity providers take an order.

The rules are the ``default_route`` and ``[[route]]`` tables of the venues file
(``docs/venues.md``). The first route whose filters all match an order wins; none matching,
the route named by ``default_route`` applies (it must exist, or be ``"bbook"``: the B-book
with no markup). A route matches on the account's group (its tier, or ``account:<id>``),
the symbol (a catalogue symbol or ``group:<symbol group>``), the order type and the size in
lots (``min_lots <= lots <= max_lots``); a filter left out matches anything.

A split route sends a fixed share of orders to the A-book, chosen by a hash of the route's
name and the order id: the same order is routed the same way after a restart, with no state.

Everything here is pure: ``parse_routing`` checks a parsed TOML document strictly (every
error names the rule and the key), ``Routing.resolved`` checks it against a catalogue, and
``Routing.decide`` answers for one order. Which LP is live is the router's business
(``trading.venues.router``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from trading.catalogue import Catalogue
from trading.errors import ConfigError, UnknownSymbol
from trading.orders import OrderType

BBOOK = "bbook"  # the B-book's venue name, and the implicit route to it


class Book(StrEnum):
    A = "a"
    B = "b"
    SPLIT = "split"


class IfNoLp(StrEnum):
    BBOOK = "bbook"
    REJECT = "reject"


class RoutingError(ConfigError):
    """A routing rule that cannot be used: the message names the rule and the key."""


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    book: Book
    account_groups: frozenset[str] | None = None
    symbols: frozenset[str] | None = None
    symbol_groups: frozenset[str] | None = None
    order_types: frozenset[OrderType] | None = None
    min_lots: Decimal | None = None
    max_lots: Decimal | None = None
    a_share: Decimal = Decimal(0)
    lps: tuple[str, ...] = ()
    if_no_lp: IfNoLp = IfNoLp.BBOOK
    markup: Decimal = Decimal(0)

    def matches(
        self, account_id: int, tier: str, symbol: str, symbol_group: str, order_type: OrderType,
        lots: Decimal,
    ) -> bool:  # fmt: skip
        if self.account_groups is not None and not (
            tier in self.account_groups or f"account:{account_id}" in self.account_groups
        ):
            return False
        if not self.matches_symbol(symbol, symbol_group):
            return False
        if self.order_types is not None and order_type not in self.order_types:
            return False
        if self.min_lots is not None and lots < self.min_lots:
            return False
        return self.max_lots is None or lots <= self.max_lots

    def matches_symbol(self, symbol: str, symbol_group: str) -> bool:
        if self.symbols is None and self.symbol_groups is None:
            return True
        return symbol in (self.symbols or ()) or symbol_group in (self.symbol_groups or ())

    def to_a_book(self, order_id: int) -> bool:
        """Whether this route sends the order to the A-book (a split: by the order's hash)."""
        if self.book is Book.A:
            return True
        if self.book is Book.B:
            return False
        return split_point(self.name, order_id) < self.a_share


def split_point(route: str, order_id: int) -> Decimal:
    """A point in [0, 1) fixed by the route's name and the order id: uniform, stable across
    processes and restarts (unlike ``hash``, which is salted per process)."""
    digest = hashlib.blake2b(f"{route}:{order_id}".encode(), digest_size=8).digest()
    return Decimal(int.from_bytes(digest, "big")) / Decimal(2**64)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one order goes: ``lps`` in priority order when ``book`` is A (empty for B)."""

    route: str
    book: Book  # A or B, never SPLIT: a split is decided
    lps: tuple[str, ...]
    if_no_lp: IfNoLp
    markup: Decimal


_DEFAULT_BBOOK = Route(BBOOK, Book.B)


@dataclass(frozen=True, slots=True)
class Routing:
    routes: tuple[Route, ...]
    default_route: str = BBOOK

    @property
    def default(self) -> Route:
        for r in self.routes:
            if r.name == self.default_route:
                return r
        return _DEFAULT_BBOOK

    def route(self, name: str) -> Route | None:
        if name == BBOOK and all(r.name != BBOOK for r in self.routes):
            return _DEFAULT_BBOOK
        return next((r for r in self.routes if r.name == name), None)

    def decide(
        self, *, order_id: int, account_id: int, tier: str, symbol: str, symbol_group: str,
        order_type: OrderType, lots: Decimal,
    ) -> Decision:  # fmt: skip
        """The route of one order: the first rule that matches, else the default."""
        chosen = next(
            (
                r
                for r in self.routes
                if r.matches(account_id, tier, symbol, symbol_group, order_type, lots)
            ),
            self.default,
        )
        if chosen.to_a_book(order_id):
            return Decision(chosen.name, Book.A, chosen.lps, chosen.if_no_lp, chosen.markup)
        # The B-book adds its own markup (the fee schedule's): a route's is for A-book fills.
        return Decision(chosen.name, Book.B, (), chosen.if_no_lp, Decimal(0))

    @property
    def lp_names(self) -> frozenset[str]:
        return frozenset(lp for r in self.routes for lp in r.lps)

    def resolved(self, catalogue: Catalogue, lps: Iterable[str]) -> Routing:
        """The rules with symbols in the catalogue's spelling, after checking that every
        symbol, symbol group and LP exists and every markup is on the price grid of each
        instrument its route can match."""
        known_lps = set(lps)
        groups = {inst.symbol_group for inst in catalogue}
        out = []
        for r in self.routes:
            symbols = None
            if r.symbols is not None:
                names = set()
                for name in sorted(r.symbols):
                    try:
                        names.add(catalogue.resolve(name).symbol)
                    except UnknownSymbol:
                        raise RoutingError(
                            f"route {r.name!r}: symbols: {name!r} is not in the catalogue"
                        ) from None
                symbols = frozenset(names)
            for g in sorted(r.symbol_groups or ()):
                if g not in groups:
                    raise RoutingError(
                        f"route {r.name!r}: symbols: group:{g} is no symbol group of the "
                        f"catalogue (known: {', '.join(sorted(groups))})"
                    )
            for lp in r.lps:
                if lp not in known_lps:
                    raise RoutingError(f"route {r.name!r}: lps: {lp!r} is no [[lp]] of the file")
            resolved = replace(r, symbols=symbols)
            if r.markup:
                for inst in catalogue:
                    if not resolved.matches_symbol(inst.symbol, inst.symbol_group):
                        continue
                    scaled = r.markup * inst.price_scale
                    if scaled != scaled.to_integral_value() or int(scaled) % inst.tick_int:
                        raise RoutingError(
                            f"route {r.name!r}: markup: {r.markup} is not a whole number of "
                            f"{inst.symbol}'s ticks ({inst.tick_size}); narrow the route's "
                            f"symbols or change the markup"
                        )
            out.append(resolved)
        return Routing(tuple(out), self.default_route)


# -- parsing ------------------------------------------------------------------------------------

_ROUTE_KEYS = {
    "name", "account_groups", "symbols", "order_types", "min_lots", "max_lots", "book",
    "a_share", "lps", "if_no_lp", "markup",
}  # fmt: skip


def parse_routing(doc: Mapping[str, object]) -> Routing:
    """The ``default_route`` and ``[[route]]`` parts of a parsed venues file, checked
    strictly; other top-level keys are the caller's."""
    raw = doc.get("route", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise RoutingError("route: must be an array of tables ([[route]])")
    routes: list[Route] = []
    for i, table in enumerate(raw):
        r = _route(i, table)
        if any(o.name == r.name for o in routes):
            raise RoutingError(f"route {r.name!r}: name: used by an earlier [[route]]")
        routes.append(r)
    default = doc.get("default_route", BBOOK)
    if not isinstance(default, str):
        raise RoutingError(f"default_route: must be a route name (a string), not {default!r}")
    if default != BBOOK and all(r.name != default for r in routes):
        raise RoutingError(
            f"default_route: {default!r} is no [[route]] of the file (nor {BBOOK!r})"
        )
    return Routing(tuple(routes), default)


def _route(index: int, t: Mapping[str, object]) -> Route:
    name = t.get("name")
    where = f"route {name!r}" if isinstance(name, str) and name else f"route #{index + 1}"

    def fail(key: str, message: str) -> RoutingError:
        return RoutingError(f"{where}: {key}: {message}")

    unknown = set(t) - _ROUTE_KEYS
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_ROUTE_KEYS))})")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "required, a non-empty string")

    def strings(key: str) -> tuple[str, ...] | None:
        v = t.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            raise fail(key, f"a non-empty list of non-empty strings, not {v!r}")
        return tuple(v)

    def decimal(key: str, lo: Decimal, hi: Decimal | None = None) -> Decimal | None:
        v = t.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise fail(key, f'a decimal string such as "0.5" (not a TOML number), not {v!r}')
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise fail(key, f"{v!r} is not a decimal number") from None
        if not d.is_finite() or d < lo or (hi is not None and d > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise fail(key, f"{v} must be {bound}")
        return d

    def choice(key: str, enum: type[StrEnum], default: StrEnum | None) -> StrEnum:
        v = t.get(key)
        if v is None and default is not None:
            return default
        values = {e.value: e for e in enum}
        if isinstance(v, str) and v in values:
            return values[v]
        raise fail(key, f"one of {', '.join(e.value for e in enum)}, not {v!r}")

    book = Book(choice("book", Book, None))
    groups = strings("account_groups")
    for g in groups or ():
        if g.startswith("account:") and not g.removeprefix("account:").isdigit():
            raise fail("account_groups", f"{g!r}: an account is written account:<id>")
    symbols: set[str] = set()
    symbol_groups: set[str] = set()
    raw_symbols = strings("symbols")
    for s in raw_symbols or ():
        if s.startswith("group:"):
            if not s.removeprefix("group:"):
                raise fail("symbols", "group: needs a symbol group's name")
            symbol_groups.add(s.removeprefix("group:"))
        else:
            symbols.add(s)
    types = strings("order_types")
    order_types = None
    if types is not None:
        try:
            order_types = frozenset(OrderType(x) for x in types)
        except ValueError:
            raise fail(
                "order_types", f"{types!r}: each one of {', '.join(o.value for o in OrderType)}"
            ) from None
    min_lots = decimal("min_lots", Decimal(0))
    max_lots = decimal("max_lots", Decimal(0))
    if min_lots is not None and max_lots is not None and min_lots > max_lots:
        raise fail("max_lots", f"{max_lots} is below min_lots {min_lots}")
    a_share = decimal("a_share", Decimal(0), Decimal(1))
    if book is Book.SPLIT and a_share is None:
        raise fail("a_share", "required for a split route (the share of orders to the A-book)")
    if book is not Book.SPLIT and a_share is not None:
        raise fail("a_share", f"only a split route has one (this route's book is {book.value})")
    lps = strings("lps") or ()
    if book is not Book.B and not lps:
        raise fail("lps", f"required for book = {book.value!r}: the LPs in priority order")
    if book is Book.B and lps:
        raise fail("lps", "a B-book route sends to no LP")
    if len(set(lps)) != len(lps):
        raise fail("lps", f"{list(lps)!r} names an LP twice")
    markup = decimal("markup", Decimal(0))
    return Route(
        name=name, book=book,
        account_groups=None if groups is None else frozenset(groups),
        symbols=frozenset(symbols) if raw_symbols is not None else None,
        symbol_groups=frozenset(symbol_groups) if raw_symbols is not None else None,
        order_types=order_types, min_lots=min_lots, max_lots=max_lots,
        a_share=a_share or Decimal(0), lps=lps,
        if_no_lp=IfNoLp(choice("if_no_lp", IfNoLp, IfNoLp.BBOOK)),
        markup=markup or Decimal(0),
    )  # fmt: skip
