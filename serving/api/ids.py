"""Ids the API chooses: a client's and an account's (the OMS takes them from the command,
docs/commands.md) and a user's (the API's own table).

A Redis counter per kind, ``bourse:ids:{kind}``, never below the store's largest id: one
script raises it to that floor when it lags (a fresh Redis, ids made by ``simulate``) and
increments, so every worker of the API draws distinct ids without a lock.
"""

from __future__ import annotations

from typing import Any, cast

import redis
from sqlalchemy import Column, Engine, func, select

IDS_PREFIX = "bourse:ids:"

_NEXT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


class IdAllocator:
    def __init__(self, client: redis.Redis) -> None:
        self._next = client.register_script(_NEXT)

    def next(self, kind: str, engine: Engine, column: Column[Any]) -> int:
        """A fresh id of ``kind``, above every ``column`` value in the store."""
        with engine.connect() as conn:
            floor = conn.execute(select(func.max(column))).scalar_one_or_none() or 0
        return int(cast("Any", self._next(keys=[IDS_PREFIX + kind], args=[int(floor)])))
