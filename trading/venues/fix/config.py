"""One liquidity provider's FIX session: the ``[[lp]]`` table of the venues file.

```toml
[[lp]]
name = "lp1"                       # the venue name: orders, events, ledger (venue:lp1:...)
host = "127.0.0.1"
port = 5001
begin_string = "FIX.4.4"           # or "FIX.4.2"
sender_comp_id = "BOURSE"
target_comp_id = "LP1"
heartbeat_s = 30
reconnect_s = 5
session_start = "00:00:00"         # UTC; equal start and end: the session never ends
session_end = "00:00:00"
reset_on_logon = false             # true: both sides start at sequence number 1 each logon
order_types = ["limit", "market"]  # what the LP takes
tifs = ["day", "gtc", "ioc", "fok"]
mic = "XOFF"                       # or a name; recorded as the execution venue
status_request = "order"           # "order" (35=H per order) or "mass" (35=AF)
priority = 1                       # lower first; failover to the next live LP
market_data = false                # subscribe 35=V on this session
```

The model is strict (no coercion: a port is an integer, not ``"5001"``) and refuses unknown
keys; ``lp_config`` turns pydantic's error into a ``ConfigError`` naming the LP and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from trading.errors import ConfigError
from trading.orders import OrderType, TimeInForce

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
# FIX CompIDs and the venue name end up in file paths and ledger codes: keep them plain.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_COMP_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LpConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    begin_string: Literal["FIX.4.2", "FIX.4.4"] = "FIX.4.4"
    sender_comp_id: str
    target_comp_id: str
    heartbeat_s: int = Field(default=30, ge=1, le=3600)
    reconnect_s: int = Field(default=5, ge=1, le=3600)
    session_start: str = "00:00:00"
    session_end: str = "00:00:00"
    reset_on_logon: bool = False
    order_types: tuple[OrderType, ...] = (OrderType.LIMIT, OrderType.MARKET)
    tifs: tuple[TimeInForce, ...] = (
        TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK,
    )  # fmt: skip
    mic: str = ""
    status_request: Literal["order", "mass"] = "order"
    priority: int = Field(default=1, ge=0)
    market_data: bool = False

    @field_validator("order_types", mode="before")
    @classmethod
    def _order_types(cls, value: Any) -> Any:
        return _enums(value, OrderType, "order type")

    @field_validator("tifs", mode="before")
    @classmethod
    def _tifs(cls, value: Any) -> Any:
        return _enums(value, TimeInForce, "time in force")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("lower-case letters, digits, '-' or '_', starting with a letter")
        return value

    @field_validator("sender_comp_id", "target_comp_id")
    @classmethod
    def _comp_id(cls, value: str) -> str:
        if not _COMP_ID.match(value):
            raise ValueError("1 to 64 letters, digits, '.', '-' or '_'")
        return value

    @field_validator("session_start", "session_end")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME.match(value):
            raise ValueError("a UTC time HH:MM:SS")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("a host name or address")
        return value

    @model_validator(mode="after")
    def _mass_needs_44(self) -> LpConfig:
        if self.status_request == "mass" and self.begin_string == "FIX.4.2":
            raise ValueError("status_request: 'mass' (35=AF) needs FIX.4.4; use 'order'")
        return self

    @property
    def fix42(self) -> bool:
        return self.begin_string == "FIX.4.2"

    @property
    def execution_venue(self) -> str:
        """What the venue's records call this LP: its MIC, else its name."""
        return self.mic or self.name


def _enums(value: Any, enum: type[OrderType] | type[TimeInForce], what: str) -> Any:
    # TOML gives lists of strings; strict mode would refuse both the list and the text.
    if not isinstance(value, list | tuple):
        return value
    out = []
    for v in value:
        if isinstance(v, enum):
            out.append(v)
            continue
        if not isinstance(v, str) or v not in {e.value for e in enum}:
            allowed = ", ".join(e.value for e in enum)
            raise ValueError(f"unknown {what} {v!r} (one of {allowed})")
        out.append(enum(v))
    if len(set(out)) != len(out):
        raise ValueError(f"a {what} is listed twice")
    return tuple(out)


def lp_config(table: Mapping[str, Any], where: str = "[[lp]]") -> LpConfig:
    """Validate one ``[[lp]]`` table; a ``ConfigError`` names the LP and the key."""
    label = where
    name = table.get("name")
    if isinstance(name, str):
        label = f"{where} {name!r}"
    try:
        return LpConfig.model_validate(dict(table))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{key}: {msg}" if key else msg)
        raise ConfigError(f"{label}: " + "; ".join(problems)) from None


def lp_configs(tables: Any) -> list[LpConfig]:
    """Every ``[[lp]]`` table of a venues file; names, and host:port pairs, unique."""
    if tables is None:
        return []
    if not isinstance(tables, list):
        raise ConfigError("lp: an array of tables ([[lp]])")
    lps = [lp_config(t, f"[[lp]] #{i + 1}") for i, t in enumerate(tables)]
    names = [lp.name for lp in lps]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError(f"[[lp]]: name {n!r} is used twice")
    sessions = [(lp.begin_string, lp.sender_comp_id, lp.target_comp_id) for lp in lps]
    for lp, sid in zip(lps, sessions, strict=True):
        if sessions.count(sid) > 1:
            raise ConfigError(f"[[lp]] {lp.name!r}: session {'/'.join(sid)} is used twice")
    return lps
