"""Prometheus metrics in a registry owned by one app (no process-global collectors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _EngineCollector(Collector):
    """Reads queue depth and loaded models from an engine at scrape time. The image engine's families keep their
    first names (`genfoundry_queue_depth`, `genfoundry_engine_*`); the text engine's carry `text_`."""

    def __init__(self, stats: Callable[[], dict[str, Any]], *, kind: str, counters: tuple[str, ...]) -> None:
        self._stats = stats
        self._kind = kind
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        models: dict[str, dict[str, Any]] = stats.get("models", {})
        prefix = "genfoundry_" if self._kind == "image" else f"genfoundry_{self._kind}_"
        queue = GaugeMetricFamily(f"{prefix}queue_depth", f"{self._kind} requests waiting per base", labels=["model"])
        loaded = GaugeMetricFamily(
            f"{prefix}loaded_model_bytes", f"Estimated bytes of each loaded {self._kind} base", labels=["model"]
        )
        adapters = GaugeMetricFamily(
            f"{prefix}loaded_adapters", f"Adapters loaded per {self._kind} base", labels=["model"]
        )
        warmup = GaugeMetricFamily(
            f"{prefix}compile_warmup_seconds",
            f"Wall time of the batches during which torch.compile compiled a {self._kind} base's denoiser",
            labels=["model"],
        )
        states = [info.get("state") for info in models.values()]
        for model_id, info in models.items():
            queue.add_metric([model_id], info.get("queue_depth", 0))
            if info.get("state") == "loaded":
                loaded.add_metric([model_id], info.get("bytes", 0))
                adapters.add_metric([model_id], len(info.get("adapters", [])))
                if "speed" in info:
                    warmup.add_metric([model_id], info["speed"]["compile_warmup_s"])
        yield from (queue, loaded, adapters)
        if warmup.samples:  # bases with serving-speed settings (the image engine's)
            yield warmup
        yield GaugeMetricFamily(f"{prefix}loaded_models", f"{self._kind} bases loaded", value=states.count("loaded"))
        engine = "genfoundry_engine_" if self._kind == "image" else f"genfoundry_{self._kind}_engine_"
        for name in self._counters:
            total = CounterMetricFamily(f"{engine}{name}", f"{self._kind} engine {name.replace('_', ' ')}")
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

    def watch_engine(self, kind: str, stats: Callable[[], dict[str, Any]], counters: tuple[str, ...]) -> None:
        """Scrape `stats()` of the `kind` engine ("image", "text"); `counters` are its running totals."""
        self.registry.register(_EngineCollector(stats, kind=kind, counters=counters))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
