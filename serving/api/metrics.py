"""Prometheus metrics: requests counted and timed by method, route template (``/v1/auth/
sessions/{session_id}``, never the raw path: bounded labels) and status.

Each app has its own registry (several apps in one test process do not collide). With
several workers each serves its own counts; a scrape of ``/metrics`` reaches one worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def install(app: FastAPI) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "bourse_api_requests", "HTTP requests answered", ("method", "route", "status"),
        registry=registry,
    )  # fmt: skip
    latency = Histogram(
        "bourse_api_request_duration_seconds", "Time to answer an HTTP request",
        ("method", "route", "status"), buckets=_BUCKETS_S, registry=registry,
    )  # fmt: skip

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = (request.method, template, str(status))
            requests.labels(*labels).inc()
            latency.labels(*labels).observe(time.perf_counter() - start)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
