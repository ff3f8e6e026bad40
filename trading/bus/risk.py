"""The positions flow's live risk state in Redis (``docs/risk.md``): its key names, and the
readers the API, the dashboards and the tests decode it through rather than parsing the
layout by hand. The flow's writer (``pipelines/positions/redis_out.py``) takes the key
names from here: the layout is the contract between them, like the quote book's.

Values come back typed: integers as ``int``, decimals as ``Decimal``, absent values as
``None``; a field this module does not know is kept as text (fields are added, never
renamed or removed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import redis

from trading.fields import text_of

PREFIX = "bourse:risk:"
ACCOUNT_PREFIX = PREFIX + "account:"
POSITIONS_PREFIX = PREFIX + "positions:"
MARGIN_LEVELS = PREFIX + "margin_levels"
EXPOSURE = PREFIX + "exposure"
CURRENCY_EXPOSURE = PREFIX + "exposure:currency"
HOUSE = PREFIX + "house"
CHANGES_STREAM = PREFIX + "changes"
ALERTS_STREAM = PREFIX + "alerts"
DEAD_STREAM = PREFIX + "dead"

# The ``kind`` of a changes-stream entry, by record type.
KIND_ACCOUNT = "account"
KIND_POSITION = "position"
KIND_EXPOSURE = "exposure"
KIND_CURRENCY = "currency"

CHANGE_FIELDS = ("kind", "key", "ts_ns", "data")
HOUSE_FIELDS = ("house_currency", "ts_ns", "symbols_breached", "currencies_breached",
                "value", "unvalued")  # fmt: skip


def account_key(account_id: int) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def positions_key(account_id: int) -> str:
    return f"{POSITIONS_PREFIX}{account_id}"


_ACCOUNT_INTS = frozenset({"account_id", "cash", "balance", "used_margin", "withdrawal_pending",
                           "unrealized", "equity", "free_margin", "positions", "last_seq",
                           "ts_ns"})  # fmt: skip


def _texts(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text_of(k): text_of(v) for k, v in raw.items()}


def decode_account(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """An account hash as typed values: ints, ``margin_level`` a Decimal or None,
    ``unmarked`` a list, ``other_cash`` a dict; a field this module does not know stays text."""
    out: dict[str, Any] = {}
    for name, text in _texts(raw).items():
        if name in _ACCOUNT_INTS:
            out[name] = int(text)
        elif name == "margin_level":
            out[name] = Decimal(text) if text else None
        elif name == "unmarked":
            out[name] = text.split(",") if text else []
        elif name == "other_cash":
            out[name] = json.loads(text)
        else:
            out[name] = text
    return out


def decode_position(data: str | bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(data)
    obj["avg_price"] = Decimal(obj["avg_price"])
    return obj


def decode_exposure(data: str | bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(data)
    if "amount" in obj:  # a currency's row
        obj["amount"] = Decimal(obj["amount"])
    return obj


def decode_alert(raw: Mapping[Any, Any]) -> dict[str, Any]:
    f: dict[str, Any] = _texts(raw)
    f["ts_ns"] = int(f["ts_ns"])
    f["account_id"] = int(f["account_id"]) if f.get("account_id") else None
    for name in ("symbol", "currency"):
        f[name] = f.get(name) or None
    f["level"] = Decimal(f["level"]) if f.get("level") else None
    f["details"] = json.loads(f.get("details") or "{}")
    return f


def read_account(client: redis.Redis, account_id: int) -> dict[str, Any] | None:
    raw: dict[bytes, bytes] = client.hgetall(account_key(account_id))  # type: ignore[assignment]
    return decode_account(raw) if raw else None


def read_positions(client: redis.Redis, account_id: int) -> dict[str, dict[str, Any]]:
    raw: dict[bytes, bytes] = client.hgetall(positions_key(account_id))  # type: ignore[assignment]
    return {text_of(k): decode_position(v) for k, v in raw.items()}


def read_exposure(client: redis.Redis) -> dict[str, dict[str, Any]]:
    raw: dict[bytes, bytes] = client.hgetall(EXPOSURE)  # type: ignore[assignment]
    return {text_of(k): decode_exposure(v) for k, v in raw.items()}


def read_currency_exposure(client: redis.Redis) -> dict[str, dict[str, Any]]:
    raw: dict[bytes, bytes] = client.hgetall(CURRENCY_EXPOSURE)  # type: ignore[assignment]
    return {text_of(k): decode_exposure(v) for k, v in raw.items()}


def read_house(client: redis.Redis) -> dict[str, str]:
    raw: dict[bytes, bytes] = client.hgetall(HOUSE)  # type: ignore[assignment]
    return _texts(raw)


def accounts_by_margin_level(client: redis.Redis, limit: int) -> list[tuple[int, Decimal]]:
    """The ``limit`` accounts nearest stop-out (lowest margin level first), with the exact
    level from each account's hash. Two round trips: the set orders, the hashes answer."""
    if limit <= 0:
        return []
    members: list[bytes] = client.zrange(MARGIN_LEVELS, 0, limit - 1)  # type: ignore[assignment]
    ids = [int(m) for m in members]
    pipe = client.pipeline(transaction=False)
    for account_id in ids:
        pipe.hget(account_key(account_id), "margin_level")
    out = []
    for account_id, level in zip(ids, pipe.execute(), strict=True):
        if level:  # removed between the two reads: no longer uses margin
            out.append((account_id, Decimal(text_of(level))))
    return out


def stream_last_id(client: redis.Redis, stream: str) -> str:
    """The id of ``stream``'s newest entry (``"0-0"`` when empty): where to follow from."""
    last: list[tuple[bytes, Any]] = client.xrevrange(stream, count=1)  # type: ignore[assignment]
    return text_of(last[0][0]) if last else "0-0"


def _read(
    client: redis.Redis, stream: str, last_id: str, count: int, block_ms: int | None
) -> list[tuple[str, dict[bytes, bytes]]]:
    reply: Any = client.xread({stream: last_id}, count=count, block=block_ms)
    if not reply:
        return []
    entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]
    return [(text_of(sid), fields) for sid, fields in entries]


def read_alerts(
    client: redis.Redis, last_id: str, count: int, block_ms: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Alerts after ``last_id`` (exclusive), oldest first, decoded."""
    return [(sid, decode_alert(f)) for sid, f in _read(client, ALERTS_STREAM, last_id, count,
                                                       block_ms)]  # fmt: skip


def read_changes(
    client: redis.Redis, last_id: str, count: int, block_ms: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Changes after ``last_id``: ``kind``, ``key``, ``ts_ns`` (int) and ``data`` decoded
    as the hash of its kind holds it (a position, an exposure row, an account hash)."""
    out = []
    for sid, raw in _read(client, CHANGES_STREAM, last_id, count, block_ms):
        f: dict[str, Any] = _texts(raw)
        f["ts_ns"] = int(f["ts_ns"])
        if f["kind"] == KIND_ACCOUNT:
            f["data"] = decode_account(json.loads(f["data"]))
        elif f["kind"] == KIND_POSITION:
            f["data"] = decode_position(f["data"])
        elif f["kind"] in (KIND_EXPOSURE, KIND_CURRENCY):
            f["data"] = decode_exposure(f["data"])
        # a kind added later: its data stays text
        out.append((sid, f))
    return out
