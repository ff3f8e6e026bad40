"""What the app holds while it runs: its clients of Redis, the store and the bus.

Built by the app's lifespan (``app.open_state``) and reached by routes through
``deps.StateDep``; tests build the app with their own settings and use the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from argon2 import PasswordHasher
from fastapi import Request
from sqlalchemy import Engine

from serving.settings import Settings
from trading.bus.client import CommandClient


@dataclass
class ApiState:
    settings: Settings
    redis: redis.Redis
    # The store's read side (never writes), and the API's own tables' writer.
    reader: Engine
    writer: Engine
    bus: CommandClient
    clock: Callable[[], int] = time.time_ns  # UTC nanoseconds
    hasher: PasswordHasher = field(default_factory=PasswordHasher)

    def close(self) -> None:
        self.bus.close()
        self.reader.dispose()
        self.writer.dispose()
        self.redis.close()


def get_state(request: Request) -> ApiState:
    """The running app's state (a dependency)."""
    state: ApiState = request.app.state.api
    return state
