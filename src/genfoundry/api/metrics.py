"""Prometheus metrics in a registry owned by one app (no process-global collectors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _EngineCollector(Collector):
    """Reads queue depth and loaded models from the engine at scrape time."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        queue = GaugeMetricFamily(
            "genfoundry_queue_depth", "Requests waiting per base model", labels=["model"]
        )
        for model, depth in stats.get("queue_depth", {}).items():
            queue.add_metric([model], depth)
        yield queue
        loaded = GaugeMetricFamily(
            "genfoundry_loaded_model_bytes", "Estimated bytes of each loaded base model", labels=["model"]
        )
        for model, size in stats.get("loaded_models", {}).items():
            loaded.add_metric([model], size)
        yield loaded
        yield GaugeMetricFamily(
            "genfoundry_loaded_models", "Base models loaded", value=len(stats.get("loaded_models", {}))
        )
        yield GaugeMetricFamily(
            "genfoundry_batches_total", "Pipeline calls made", value=stats.get("batches", 0)
        )
        yield GaugeMetricFamily("genfoundry_images_total", "Images generated", value=stats.get("images", 0))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "genfoundry_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "genfoundry_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def watch_engine(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_EngineCollector(stats))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
