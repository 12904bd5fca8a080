"""Prometheus metrics, one registry per app so several apps can live in one process."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.domain.activity import RequestActivity


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "paced_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "paced_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.outcomes_ingested = Counter(
            "paced_outcomes_ingested_total",
            "Outcome items accepted (replays not counted).",
            registry=self.registry,
        )
        self.attempts_ingested = Counter(
            "paced_attempts_ingested_total",
            "Rollout attempts carried by accepted outcomes.",
            registry=self.registry,
        )
        self.batches_served = Counter(
            "paced_batches_served_total", "Batches served.", ["mode"], registry=self.registry
        )
        self.batch_items_served = Counter(
            "paced_batch_items_served_total", "Problems served in batches.", registry=self.registry
        )

        self.prompt_cache = Gauge(
            "paced_prompt_cache",
            "Problem-text cache of this process: hits and misses since start, bytes held.",
            ["what"],
            registry=self.registry,
        )

    def observe_prompt_cache(self, hits: int, misses: int, nbytes: int) -> None:
        for what, value in (("hits", hits), ("misses", misses), ("bytes", nbytes)):
            self.prompt_cache.labels(what).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times requests by their route template, and tells
    ``activity`` when requests start and finish (background warm-up waits for quiet)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, activity: RequestActivity) -> None:
        self.app = app
        self.metrics = metrics
        self.activity = activity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        self.activity.started()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.activity.finished()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - start)
