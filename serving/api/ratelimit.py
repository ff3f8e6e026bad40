"""Rate limits in Redis: a fixed-window counter per key (a user, an IP, log-ins by IP).

    bourse:ratelimit:{bucket}:{who}:{window}   INCR; PEXPIRE = the window, set by the first

One Lua script counts and reads the window's remaining time in one round trip, the same
for every worker of the API. A request over the limit is answered 429 ``rate_limited``
with ``Retry-After`` (whole seconds until the window ends) and is not served.
"""

from __future__ import annotations

import math
from typing import Any, cast

import redis

from serving.api.problems import Problem

RATE_PREFIX = "bourse:ratelimit:"

_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._hit = client.register_script(_HIT)

    def hit(self, bucket: str, who: str, limit: int, window_s: int, now_ns: int) -> None:
        """Counts one request of ``who`` in ``bucket``; raises 429 past ``limit`` per window."""
        window = now_ns // (window_s * 10**9)
        key = f"{RATE_PREFIX}{bucket}:{who}:{window}"
        n, ttl_ms = cast("list[Any]", self._hit(keys=[key], args=[window_s * 1000]))
        if int(n) > limit:
            retry = max(1, math.ceil(int(ttl_ms) / 1000))
            raise Problem.of(
                "rate_limited",
                f"more than {limit} requests in {window_s} s: retry in {retry} s",
                headers={"Retry-After": str(retry)},
                retry_after_s=retry,
            )
