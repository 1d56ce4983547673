"""Prometheus metrics of the inference server, per model and version.

With several worker processes each one writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which the
runner sets up before any worker exists) and ``/metrics`` sums them; with one
process the metrics live in the app's own registry.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.serving.model import ServedModel

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5, 5.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Counters and histograms; children are cached per label set (``labels()`` is slow)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version", "variant")
        self.requests = Counter(
            "loopline_inference_requests",
            "Inference requests answered, by HTTP status code.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.errors = Counter(
            "loopline_inference_errors",
            "Inference requests that failed, by kind (client: 4xx, server: 5xx).",
            (*labels, "kind"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopline_inference_latency_seconds",
            "Time from a request's arrival to its answer.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "loopline_inference_batch_size",
            "Rows per predict call (adaptive batching).",
            ("model", "version"),
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predict_seconds = Histogram(
            "loopline_inference_predict_seconds",
            "Time spent in the model's predict, per batch.",
            ("model", "version"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def answered(
        self, model: ServedModel | None, variant: str, status: int, seconds: float
    ) -> None:
        name, version = (model.name, model.version) if model is not None else ("", "")
        self._child(self.requests, name, version, variant, str(status)).inc()
        if status >= 400:
            kind = "client" if status < 500 else "server"
            self._child(self.errors, name, version, variant, kind).inc()
        else:
            self._child(self.latency, name, version, variant).observe(seconds)

    def batch(self, model: ServedModel, rows: int, seconds: float) -> None:
        self._child(self.batch_size, model.name, model.version).observe(rows)
        self._child(self.predict_seconds, model.name, model.version).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if not self.multiprocess:
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
