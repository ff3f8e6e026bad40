"""Frozen, typed configuration of the core, passed to constructors.

Defaults describe a plausible retail broker; a deployment overrides them from its settings.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierLimits(_Frozen):
    """Limits of one account tier. Quantities are in lots, notionals in the account currency."""

    max_position_lots: Decimal = Decimal(50)
    max_order_lots: Decimal = Decimal(20)
    max_order_notional: Decimal = Decimal(2_000_000)
    max_orders_per_second: int = 50


class RiskConfig(_Frozen):
    tiers: dict[str, TierLimits] = Field(
        default_factory=lambda: {
            "retail": TierLimits(),
            "professional": TierLimits(
                max_position_lots=Decimal(500),
                max_order_lots=Decimal(100),
                max_order_notional=Decimal(20_000_000),
                max_orders_per_second=200,
            ),
        }
    )
    restricted_symbols: frozenset[str] = frozenset()
    # Retail leverage is capped by regulation (ESMA: 30 majors, 20 minors/gold/indices, 2 crypto).
    max_leverage_by_tier: dict[str, int] = Field(
        default_factory=lambda: {"retail": 30, "professional": 100}
    )


class FeeSchedule(_Frozen):
    """Per symbol group: commission per lot per side, or in basis points of notional."""

    commission_per_lot: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "fx_major": Decimal("3.50"),
            "fx_minor": Decimal("3.50"),
            "metals": Decimal("5.00"),
        }
    )
    commission_bps: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "crypto": Decimal(10),
            "equities": Decimal(5),
            "indices": Decimal(0),
        }
    )
    # Markup in ticks added to the raw quote (the B-book's spread income).
    markup_ticks: dict[str, int] = Field(
        default_factory=lambda: {
            "fx_major": 3,
            "fx_minor": 5,
            "metals": 10,
            "indices": 2,
            "crypto": 100,
            "equities": 1,
        }
    )


class VenueConfig(_Frozen):
    max_quote_age_ms: int = 5_000
    # A market order with no slippage bound of its own gets this one, in ticks.
    default_max_slippage_ticks: int | None = None


class OMSConfig(_Frozen):
    max_batch: int = Field(default=200, ge=1, le=10_000)
    # Bounded: a full queue pushes back on the caller instead of growing memory.
    max_queue: int = Field(default=20_000, ge=1)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    fees: FeeSchedule = Field(default_factory=FeeSchedule)
    venue: VenueConfig = Field(default_factory=VenueConfig)
