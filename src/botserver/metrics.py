"""Prometheus metrics, one registry per app so several apps in one process stay apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "botserver_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "botserver_http_request_seconds",
            "Time to answer HTTP requests, by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.open_sockets = Gauge(
            "botserver_websockets_open", "WebSocket connections open now.", registry=self.registry
        )
        self.messages = Counter(
            "botserver_messages",
            "Conversation messages stored, by direction (in: from users, out: from bots).",
            ["direction"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "botserver_rate_limited",
            "Requests and socket messages refused by the rate limiter, by tier.",
            ["tier"],
            registry=self.registry,
        )
