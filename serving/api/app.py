"""The API: ``create_app(settings)`` builds the FastAPI app; ``bourse serve`` runs it.

    /v1/health        liveness: answers while the process runs (no Redis, no store)
    /v1/ready         readiness: Redis answers PING and the store a query; else 503
    /v1/auth/...      routes_auth.py, routes_security.py
    /v1/ws            the WebSocket (ws.py; docs/websocket.md)
    /dashboard        the risk desk's live page (dashboard.py, static/)
    /v1/back-office/  routes_backoffice.py (staff: withdrawals, limits, states, halts, closes)
    /v1/risk/...      routes_risk.py (the positions flow's live risk state, alerts)
    /metrics          Prometheus (metrics.py)
    /openapi.json     the OpenAPI schema

Every route under ``/v1`` but the probes counts against its caller's IP rate limit; the
routers of the resources (``ROUTERS``, each with its ``/v1`` prefix) take the caller from
``deps.CurrentUser``. The app opens its clients in its lifespan: Redis; the store's read
side (``open_readonly``: the store must exist and be migrated, by the OMS); a writer engine
for the API's own tables (users, devices); the command bus, as actor ``api`` (each command
names its user).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text

from serving.api import (
    dashboard,
    metrics,
    problems,
    routes_accounts,
    routes_auth,
    routes_backoffice,
    routes_backoffice_reads,
    routes_funding,
    routes_market,
    routes_orders,
    routes_positions,
    routes_risk,
    routes_security,
    routes_statements,
    ws,
)
from serving.api.auth import limit_ip
from serving.api.deps import StateDep
from serving.api.problems import Problem
from serving.api.state import ApiState
from serving.api.ws_hub import Hub
from serving.settings import Settings
from trading.bus.client import CommandClient

API_VERSION = "1"
V1 = "/v1"
# The resources' routers, in the order the schema lists them; each with its ``/v1`` prefix.
ROUTERS: tuple[APIRouter, ...] = (
    routes_auth.router,
    routes_security.router,
    routes_accounts.router,
    routes_orders.router,
    routes_positions.router,
    routes_statements.router,
    routes_funding.router,
    routes_funding.callbacks,
    routes_market.router,
    routes_backoffice.router,
    routes_backoffice_reads.router,
    routes_risk.router,
)


def open_state(settings: Settings) -> ApiState:
    """The app's clients; ``StoreError`` (``NoStore``) when the store cannot be read."""
    from trading.store.engine import open_engine, open_readonly

    reader = open_readonly(settings.store_dsn())
    writer = open_engine(settings.store_dsn())
    client = redis.Redis.from_url(settings.redis_url)
    bus = CommandClient(client, actor="api")
    return ApiState(settings=settings, redis=client, reader=reader, writer=writer, bus=bus)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(settings)
        app.state.api = state
        app.state.ws_hub = Hub(
            settings.redis_url, quote_interval_ms=settings.api_ws_quote_interval_ms
        )
        try:
            yield
        finally:
            await app.state.ws_hub.close()
            state.close()

    app = FastAPI(
        title="Bourse API",
        version=API_VERSION,
        description="Clients' trading and the back office of a retail broker. Errors are "
        "`application/problem+json` with a stable `code`.",
        lifespan=lifespan,
    )
    problems.install(app)
    metrics.install(app)

    probes = APIRouter(prefix=V1, tags=["probes"], responses=problems.responses(503))
    probes.add_api_route("/health", health, methods=["GET"])
    probes.add_api_route("/ready", ready, methods=["GET"])
    app.include_router(probes)
    # Each router carries its whole path (``/v1/...``): the route a request matched then
    # names its template for the metrics.
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(limit_ip)], responses=problems.COMMON)
    # Outside ROUTERS: a WebSocket has no HTTP request for the IP limit to read, and the
    # dashboard's page and script are static (its data comes over the WebSocket).
    app.include_router(ws.router)
    app.include_router(dashboard.router)
    return app


def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def ready(state: StateDep) -> dict[str, Any]:
    """Readiness: Redis and the store answer; 503 ``unavailable`` naming which does not."""
    down: list[str] = []
    try:
        state.redis.ping()
    except redis.RedisError:
        down.append("redis")
    try:
        with state.reader.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        down.append("store")
    if down:
        raise Problem.of("unavailable", f"not reachable: {', '.join(down)}", down=down)
    return {"status": "ready"}
