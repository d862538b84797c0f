"""Prometheus metrics of both services, served over HTTP for operators.

Every RPC is counted and timed in the error interceptor, the one place every
call passes through; areas add their own counters here so that all metric
names live in one module.
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import Counter, Histogram, start_http_server

log = structlog.get_logger("framevault.metrics")

RPCS_HANDLED = Counter(
    "framevault_rpcs_handled_total",
    "RPCs completed, by gRPC service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "framevault_rpc_duration_seconds",
    "Time from receiving an RPC to its completion (whole stream for streaming RPCs).",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


# (full method, code) -> the counter and histogram of its calls: looking a labelled metric up
# costs a lock and a validation each time, while the methods and codes are few.
_RPC_METRICS: dict[tuple[str, str], tuple[Any, Any]] = {}


def observe_rpc(full_method: str, code: str, seconds: float) -> None:
    """Records one finished call; ``full_method`` is ``/package.Service/Method`` of a
    method the service serves."""
    metrics = _RPC_METRICS.get((full_method, code))
    if metrics is None:
        service, _, method = full_method.lstrip("/").partition("/")
        metrics = _RPC_METRICS[(full_method, code)] = (RPCS_HANDLED.labels(service, method, code),
                                                       RPC_SECONDS.labels(service, method))
    metrics[0].inc()
    metrics[1].observe(seconds)


class MetricsEndpoint:
    """The ``/metrics`` HTTP endpoint of one process (a daemon thread)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread):
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    @classmethod
    def start(cls, address: str) -> MetricsEndpoint | None:
        """Serves metrics on ``host:port``; empty address = off. A port in use
        is logged, not fatal: metrics must never keep a service from serving."""
        if not address:
            return None
        host, _, port = address.rpartition(":")
        try:
            server, thread = start_http_server(int(port), addr=host or "127.0.0.1")
        except OSError as exc:
            log.warning("metrics_endpoint_unavailable", address=address, error=str(exc))
            return None
        return cls(server, thread)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
