"""Prometheus metrics in a registry owned by one app (no process-global collectors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _EngineCollector(Collector):
    """Reads queue depth and loaded models from the engine at scrape time."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        models: dict[str, dict[str, Any]] = stats.get("models", {})
        queue = GaugeMetricFamily("genfoundry_queue_depth", "Requests waiting per base model", labels=["model"])
        loaded = GaugeMetricFamily(
            "genfoundry_loaded_model_bytes", "Estimated bytes of each loaded base model", labels=["model"]
        )
        adapters = GaugeMetricFamily("genfoundry_loaded_adapters", "Adapters loaded per base model", labels=["model"])
        for model_id, info in models.items():
            queue.add_metric([model_id], info.get("queue_depth", 0))
            if info.get("state") == "loaded":
                loaded.add_metric([model_id], info.get("bytes", 0))
                adapters.add_metric([model_id], len(info.get("adapters", [])))
        yield from (queue, loaded, adapters)
        yield GaugeMetricFamily("genfoundry_loaded_models", "Base models loaded", value=len(stats.get("loaded", [])))
        for name in ("requests_served", "images_served", "batches_served", "failed_batches", "loads", "evictions"):
            total = CounterMetricFamily(f"genfoundry_engine_{name}", f"Image engine {name.replace('_', ' ')}")
            total.add_metric([], stats.get(name, 0))
            yield total


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
