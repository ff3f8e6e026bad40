"""Instruments and the symbol catalogue, under the name they have always been imported by.

The code lives in `trading.instrument` (the `Instrument` type and its grids),
`trading.catalogue` (the TOML catalogue) and `trading.exact_decimal` (the grid arithmetic);
new code imports from those.
"""

from __future__ import annotations

from trading.catalogue import Catalogue, CatalogueError, default_catalogue
from trading.instrument import MAX_STORED_INT, AccountType, AssetClass, Instrument

__all__ = [
    "MAX_STORED_INT",
    "AccountType",
    "AssetClass",
    "Catalogue",
    "CatalogueError",
    "Instrument",
    "default_catalogue",
]
