"""The fraud flow's outputs: alerts to Redis and the lake, holds to the command bus, dead
letters to Redis (docs/fraud.md).

A resumed flow replays the events after its last snapshot and raises their alerts again,
under the same ``alert_id``: the Redis sink adds an alert to the stream only when its id is
new (one Lua script: the id and the entry together), the lake sink skips ids its day's
files already hold, and a hold goes under a command id the OMS answers from its command
log the second time.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.fraud.records import ACTOR, Alert, DeadLetter, Hold, alert_fields
from trading.commands import HoldWithdrawal

ALERTS_STREAM: Final = "bourse:fraud:alerts"
ALERT_IDS: Final = "bourse:fraud:alert_ids"  # sorted set: alert id -> event time (s)
DEAD_STREAM: Final = "bourse:fraud:dead"
HOLDS_SENT: Final = "bourse:fraud:holds_sent"  # sorted set: command id -> when sent (s)
LAKE_DIR: Final = "fraud_alerts"
MAXLEN: Final = 1_000_000
KEEP_IDS_S: Final = 30 * 86_400  # replays go back one snapshot: a month is ample

# KEYS: ids, stream; ARGV: id, score, maxlen, then field, value pairs.
_ADD_ONCE: Final = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""

LAKE_SCHEMA: Final[dict[str, Any]] = {
    "alert_id": pl.String, "ts_ns": pl.Int64, "client_id": pl.Int64, "account_id": pl.Int64,
    "event_type": pl.String, "event_ref": pl.String, "score": pl.Float64,
    "threshold": pl.Float64, "model_version": pl.String, "drivers": pl.String,
    "holds": pl.String,
}  # fmt: skip


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


def dead_fields(dead: DeadLetter) -> dict[str, str]:
    return {"stream": dead.stream, "stream_id": dead.stream_id, "reason": dead.reason,
            "ts_ns": str(dead.ts_ns), "event_id": _opt(dead.event_id),
            "account_id": _opt(dead.account_id), "raw": dead.raw}  # fmt: skip


class _RedisPart(StatelessSinkPartition[Any]):
    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.add_once = self.client.register_script(_ADD_ONCE)

    def write_batch(self, items: list[Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        newest = 0
        for item in items:
            if isinstance(item, Alert):
                flat = [x for kv in alert_fields(item).items() for x in kv]
                ts_s = item.ts_ns // 1_000_000_000
                newest = max(newest, ts_s)
                self.add_once(keys=[ALERT_IDS, ALERTS_STREAM],
                              args=[item.alert_id, ts_s, MAXLEN, *flat], client=pipe)  # fmt: skip
            else:
                pipe.xadd(DEAD_STREAM, dead_fields(item), maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
        if newest:
            pipe.zremrangebyscore(ALERT_IDS, "-inf", newest - KEEP_IDS_S)
        pipe.execute()

    def close(self) -> None:
        self.client.close()


class RedisSink(DynamicSink[Any]):
    """Alerts (each once) and dead letters to their streams."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RedisPart:
        return _RedisPart(self.redis_url)


class _HoldPart(StatelessSinkPartition[Hold]):
    def __init__(self, redis_url: str) -> None:
        from trading.bus.client import CommandClient

        self.client = redis.Redis.from_url(redis_url)
        # For its codec context and reply address only: the replies are not waited for
        # (the outcome comes back as cash.withdrawal_held) and expire unread.
        self.commands = CommandClient(self.client, ACTOR)
        self.send_once = self.client.register_script(_ADD_ONCE)

    def write_batch(self, items: list[Hold]) -> None:
        from trading.bus.codec import encode_command
        from trading.bus.commands import COMMANDS_STREAM, STREAM_MAXLEN
        from trading.bus.wire import entry_fields

        pipe = self.client.pipeline(transaction=False)
        now_s = int(time.time())
        for h in items:
            command = HoldWithdrawal(h.withdrawal_id, h.reason, actor=ACTOR)
            type_name, body = encode_command(command, self.commands.ctx)
            fields = entry_fields(h.command_id, type_name, body, self.commands.reply_to, ACTOR,
                                  h.reason)  # fmt: skip
            flat = [x for kv in fields.items() for x in kv]
            # Sent once even when a replay decides it again (the OMS would answer a second
            # one from its command log, but the bus need not carry it).
            args: list[str | int] = [h.command_id, now_s, STREAM_MAXLEN, *flat]
            self.send_once(keys=[HOLDS_SENT, COMMANDS_STREAM], args=args, client=pipe)
        pipe.zremrangebyscore(HOLDS_SENT, "-inf", now_s - KEEP_IDS_S)
        pipe.execute()

    def close(self) -> None:
        self.client.close()


class HoldSink(DynamicSink[Hold]):
    """``HoldWithdrawal`` commands through the bus, each under its own command id."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _HoldPart:
        return _HoldPart(self.redis_url)


# --- the lake ---------------------------------------------------------------------------------

_DAY: Final = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def alert_day(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).date().isoformat()


def alerts_frame(alerts: Iterable[Alert]) -> pl.DataFrame:
    rows = [{**alert_fields(a), "ts_ns": a.ts_ns, "client_id": a.client_id,
             "account_id": a.account_id, "score": a.score, "threshold": a.threshold}
            for a in alerts]  # fmt: skip
    return (
        pl.DataFrame(rows, schema=LAKE_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=LAKE_SCHEMA)
    )


def read_alerts(lake_root: Path) -> pl.DataFrame:
    """Every alert the lake holds, in time order."""
    files = sorted((lake_root / LAKE_DIR).glob("date=*/*.parquet"))
    if not files:
        return alerts_frame(())
    return pl.concat([pl.read_parquet(f) for f in files]).sort("ts_ns", "alert_id")


class _LakePart(StatelessSinkPartition[Alert]):
    def __init__(self, root: Path, worker: int) -> None:
        self.root = root / LAKE_DIR
        self.worker = worker
        self.seen: dict[str, set[str]] = {}  # day -> alert ids its files hold

    def _seen(self, day: str) -> set[str]:
        ids = self.seen.get(day)
        if ids is None:
            ids = set()
            for f in (self.root / f"date={day}").glob("*.parquet"):
                ids.update(pl.read_parquet(f, columns=["alert_id"])["alert_id"].to_list())
            self.seen[day] = ids
        return ids

    def write_batch(self, items: list[Alert]) -> None:
        by_day: dict[str, list[Alert]] = {}
        for a in items:
            day = alert_day(a.ts_ns)
            seen = self._seen(day)
            if a.alert_id not in seen:
                seen.add(a.alert_id)
                by_day.setdefault(day, []).append(a)
        for day, alerts in by_day.items():
            first = min(alerts, key=lambda a: (a.ts_ns, a.alert_id))
            name = f"alerts-{first.ts_ns}-{first.alert_id}-w{self.worker}.parquet"
            path = self.root / f"date={day}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.tmp")
            alerts_frame(alerts).write_parquet(tmp, compression="zstd", statistics=True)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)

    def close(self) -> None:
        pass


class LakeSink(DynamicSink[Alert]):
    """Alerts to ``<lake>/fraud_alerts/date=YYYY-MM-DD/`` (the UTC day of the event)."""

    def __init__(self, lake_root: Path) -> None:
        self.lake_root = lake_root

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LakePart:
        return _LakePart(self.lake_root, worker_index)
