"""The venues file: liquidity providers (``[[lp]]``) and routing rules (``[[route]]``).

One TOML file (``docs/venues.md``, ``venues.example.toml``) configures both: the FIX
venue reads the LPs, the router the rules. ``load_venues`` parses and checks the whole
file; a bad file raises ``VenuesFileError`` naming the file, the table and the key, and
nothing starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trading.errors import ConfigError
from trading.routing import BBOOK, Routing, RoutingError, parse_routing
from trading.venues.fix.config import LpConfig, lp_config


class VenuesFileError(ConfigError):
    """A venues file that cannot be used (unreadable, not TOML, a bad LP or rule)."""


@dataclass(frozen=True, slots=True)
class VenuesFile:
    lps: tuple[LpConfig, ...]
    routes: Routing
    source: str = "<memory>"

    @property
    def default_route(self) -> str:
        return self.routes.default_route

    def lp(self, name: str) -> LpConfig:
        return next(lp for lp in self.lps if lp.name == name)


def load_venues(path: Path) -> VenuesFile:
    try:
        text = path.read_text()
    except OSError as exc:
        raise VenuesFileError(f"{path}: cannot read the venues file: {exc.strerror}") from None
    return parse_venues(text, source=str(path))


def parse_venues(text: str, *, source: str = "<string>") -> VenuesFile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VenuesFileError(f"{source}: not TOML: {exc}") from None
    unknown = set(doc) - {"default_route", "lp", "route"}
    if unknown:
        raise VenuesFileError(
            f"{source}: unknown top-level key {sorted(unknown)[0]!r} "
            "(known: default_route, [[lp]], [[route]])"
        )
    lps = _lps(doc, source)
    try:
        routing = parse_routing(doc)
    except RoutingError as exc:
        raise VenuesFileError(f"{source}: {exc}") from None
    names = {lp.name for lp in lps}
    for route in routing.routes:
        for lp in route.lps:
            if lp not in names:
                raise VenuesFileError(
                    f"{source}: route {route.name!r}: lps: {lp!r} is no [[lp]] of the file"
                )
    return VenuesFile(lps, routing, source)


def _lps(doc: Mapping[str, object], source: str) -> tuple[LpConfig, ...]:
    raw = doc.get("lp", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise VenuesFileError(f"{source}: lp: must be an array of tables ([[lp]])")
    lps: list[LpConfig] = []
    for i, table in enumerate(raw):
        try:
            lp = lp_config(
                table, where="lp" if isinstance(table.get("name"), str) else f"lp #{i + 1}"
            )
        except ConfigError as exc:
            raise VenuesFileError(f"{source}: {exc}") from None
        if lp.name == BBOOK or any(o.name == lp.name for o in lps):
            raise VenuesFileError(
                f"{source}: lp {lp.name!r}: name: taken (by the B-book, or an earlier [[lp]])"
            )
        lps.append(lp)
    return tuple(lps)
