"""Filter thresholds: defaults per asset class, overrides per symbol, from TOML.

The defaults are set wide of what the real vendor samples in ``tests/data/market`` show
(EUR/USD and USD/JPY spreads up to 8.5 bps at the 17:00 New York rollover, tick-to-tick
mid moves under 3 bps, BTC/USDT prints under 8 bps apart) and tight enough that an
erroneous print of half a percent stands out. A file can change any of them:

```toml
confirm_ticks = 3
clock_confirm_ticks = 10
stale_after_s = 30

[asset_class.fx]
max_spread_bps = 50
spike_floor_bps = 10

[symbol."USD/JPY"]
max_spread_bps = 80

[[halt]]
symbol = "EUR/USD"
start = 2026-01-05T10:00:00Z
end = 2026-01-05T10:05:00Z
```
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from trading.catalogue import Catalogue
from trading.instrument import AssetClass, Instrument

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Bounds for one symbol. Basis points are of the mid (quotes) or the print (trades)."""

    max_spread_bps: int
    # A value is a spike candidate when it is further from the previous block's median than
    # spike_mads robust deviations (1.4826 × MAD), and than spike_floor_bps of the price.
    spike_mads: int
    spike_floor_bps: int
    # A trade print further than this from recent prints, and not confirmed after, is a fat
    # finger; so is a print of more than max_trade_lots.
    fat_finger_bps: int
    max_trade_lots: int


DEFAULTS: Mapping[AssetClass, Thresholds] = {
    AssetClass.FX: Thresholds(50, 12, 10, 50, 1_000),
    AssetClass.METAL: Thresholds(60, 12, 20, 100, 1_000),
    AssetClass.INDEX: Thresholds(60, 12, 20, 100, 10_000),
    AssetClass.CRYPTO: Thresholds(100, 12, 30, 200, 10_000),
    AssetClass.EQUITY: Thresholds(100, 12, 30, 200, 1_000_000),
}


@dataclass(frozen=True, slots=True)
class FilterConfig:
    by_class: Mapping[AssetClass, Thresholds] = field(default_factory=lambda: dict(DEFAULTS))
    by_symbol: Mapping[str, Thresholds] = field(default_factory=dict)
    # A candidate spike stands when fewer than this many following values confirm the move.
    confirm_ticks: int = 3
    # A replay's forward clock step stands when the next this-many timed ticks do not go
    # back before it more often than they stay after it (``pipelines.ticks.clock``).
    clock_confirm_ticks: int = 10
    # Rows per block of the robust statistics; the previous block is a tick's reference.
    block_rows: int = 64
    stale_after_ns: int = 30 * 1_000_000_000
    future_tolerance_ns: int = 2 * 1_000_000_000
    check_sessions: bool = True
    # symbol -> [start_ns, end_ns) intervals during which its ticks are rejected as halted.
    halts: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.confirm_ticks < 1:
            raise ValueError(f"confirm_ticks must be at least 1, got {self.confirm_ticks}")
        if self.clock_confirm_ticks < 1:
            raise ValueError(
                f"clock_confirm_ticks must be at least 1, got {self.clock_confirm_ticks}"
            )
        if self.block_rows < 8:
            raise ValueError(f"block_rows must be at least 8, got {self.block_rows}")
        for symbol, spans in self.halts.items():
            for start, end in spans:
                if end <= start:
                    raise ValueError(f"halt of {symbol}: end {end} is not after start {start}")

    def thresholds(self, inst: Instrument) -> Thresholds:
        return self.by_symbol.get(inst.symbol) or self.by_class[inst.asset_class]

    @classmethod
    def load(cls, path: Path, catalogue: Catalogue) -> FilterConfig:
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the filter config: {exc}") from exc
        return cls.from_mapping(doc, catalogue, source=str(path))

    @classmethod
    def from_mapping(
        cls, doc: Mapping[str, object], catalogue: Catalogue, *, source: str = "<config>"
    ) -> FilterConfig:
        known = {"confirm_ticks", "clock_confirm_ticks", "block_rows", "stale_after_s",
                 "future_tolerance_s", "check_sessions", "asset_class", "symbol",
                 "halt"}  # fmt: skip
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; known: {sorted(known)}")
        by_class = dict(DEFAULTS)
        for name, table in _tables(doc, "asset_class", source).items():
            try:
                asset_class = AssetClass(name)
            except ValueError:
                raise ValueError(f"{source}: unknown asset class {name!r}") from None
            by_class[asset_class] = _override(by_class[asset_class], table, f"{source}: {name}")
        by_symbol = {}
        for name, table in _tables(doc, "symbol", source).items():
            inst = catalogue.resolve(name)
            base = by_class[inst.asset_class]
            by_symbol[inst.symbol] = _override(base, table, f"{source}: {name}")
        halts: dict[str, list[tuple[int, int]]] = {}
        for entry in _halt_entries(doc, source):
            inst = catalogue.resolve(str(entry["symbol"]))
            span = (_ns(entry.get("start"), source), _ns(entry.get("end"), source))
            halts.setdefault(inst.symbol, []).append(span)
        return cls(
            by_class=by_class,
            by_symbol=by_symbol,
            confirm_ticks=_int(doc, "confirm_ticks", 3, source),
            clock_confirm_ticks=_int(doc, "clock_confirm_ticks", 10, source),
            block_rows=_int(doc, "block_rows", 64, source),
            stale_after_ns=_int(doc, "stale_after_s", 30, source) * 1_000_000_000,
            future_tolerance_ns=_int(doc, "future_tolerance_s", 2, source) * 1_000_000_000,
            check_sessions=bool(doc.get("check_sessions", True)),
            halts={s: tuple(v) for s, v in halts.items()},
        )


def _tables(doc: Mapping[str, object], key: str, source: str) -> dict[str, Mapping[str, object]]:
    value = doc.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"{source}: [{key}.<name>] must be tables")
    return value


def _override(base: Thresholds, table: Mapping[str, object], where: str) -> Thresholds:
    names = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ValueError(f"{where}: unknown threshold(s) {unknown}; known: {sorted(names)}")
    for key, value in table.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{where}: {key} must be a positive integer, got {value!r}")
    return replace(base, **table)  # type: ignore[arg-type]


def _int(doc: Mapping[str, object], key: str, default: int, source: str) -> int:
    value = doc.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{source}: {key} must be a non-negative integer, got {value!r}")
    return value


def _halt_entries(doc: Mapping[str, object], source: str) -> list[Mapping[str, object]]:
    value = doc.get("halt", [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{source}: [[halt]] entries must be tables")
    for entry in value:
        if "symbol" not in entry:
            raise ValueError(f"{source}: a [[halt]] entry has no symbol")
    return value


def _ns(value: object, source: str) -> int:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{source}: halt start/end must be TOML datetimes with an offset")
    return (value - _EPOCH) // dt.timedelta(microseconds=1) * 1_000
