"""Runs one gRPC service: aio server, health, reflection, graceful stop.

Both services start through ``run_service`` so that transport concerns
(limits, keepalive, health, reflection, signals) live in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
import structlog
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from framevault.api.transport import Options, server_channel_options
from framevault.common.config import Settings
from framevault.common.errors import FramevaultError, Unavailable
from framevault.common.interceptors import ErrorMappingInterceptor, ErrorTranslator
from framevault.common.logs import configure_logging
from framevault.common.metrics import MetricsEndpoint
from framevault.common.streams import drain_briefly
from framevault.common.tls import server_credentials
from framevault.v1.grpc.reflection.v1 import reflection_pb2 as reflection_v1_pb2

log = structlog.get_logger("framevault.server")

# A health name that is SERVING while the process runs, whatever its
# backends do: liveness probes use it, so a database outage takes instances
# out of rotation (readiness) without restarting them all.
LIVENESS_SERVICE = "liveness"
REFLECTION_V1_SERVICE = reflection_v1_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name


def enable_reflection(server: aio.Server, service_names: Sequence[str]) -> None:
    """Server reflection as ``grpc.reflection.v1`` (what current clients such as
    grpcurl ask first) and as ``grpc.reflection.v1alpha`` (older clients).

    grpcio-reflection implements v1alpha only. The v1 proto declares the same
    messages with the same field numbers under another package, so the one
    servicer answers both names: the v1 method reads and writes the v1alpha
    messages, which are the same bytes on the wire. The v1 descriptors
    (generated from the vendored upstream proto) are in the default pool, so
    clients can describe the v1 service too.
    """
    names = [*service_names, reflection.SERVICE_NAME, REFLECTION_V1_SERVICE]
    servicer = reflection.aio.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(REFLECTION_V1_SERVICE, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        ),
    }),))


def server_options(settings: Settings) -> Options:
    connection_age = ([("grpc.max_connection_age_ms", settings.grpc_max_connection_age_ms)]
                      if settings.grpc_max_connection_age_ms > 0 else [])
    return connection_age + server_channel_options(
        max_message_bytes=settings.grpc_max_message_bytes, keepalive_time_ms=settings.grpc_keepalive_time_ms,
        keepalive_timeout_ms=settings.grpc_keepalive_timeout_ms, stream_window_bytes=settings.grpc_stream_window_bytes,
    ) + [
        # gRPC shares a port between processes by default. A second process on
        # a taken address must fail instead: a forgotten process would
        # silently answer half the calls, and the metadata service ends the
        # transactions of the process it replaces on its address
        # (``Database.end_predecessor_transactions``), which is only right
        # when that process is gone.
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class ServiceSpec:
    """What ``run_service`` needs to know about one service."""

    name: str
    address: str
    # Full proto names of the services registered, for health and reflection.
    service_names: Sequence[str]
    # Registers servicers on the server.
    register: Callable[[aio.Server], None]
    # True when every backend the service needs answers.
    ready: Callable[[], Awaitable[bool]]
    translate_error: ErrorTranslator
    # Releases backend resources after the server stopped.
    close: Callable[[], Awaitable[None]]
    # host:port of the Prometheus endpoint; empty = off.
    metrics_address: str = ""
    # One-time backend set-up (indexes ...). Until it has succeeded, calls to
    # the service answer UNAVAILABLE; it is retried with the health checks.
    prepare: Callable[[], Awaitable[None]] | None = None
    # Run inside the error mapping, so their refusals are mapped like any
    # domain error (authentication and authorization: framevault.auth).
    interceptors: Sequence[aio.ServerInterceptor] = ()


class RunningService:
    """A started server; tests use it in-process, ``run_service`` from main."""

    def __init__(self, spec: ServiceSpec, settings: Settings):
        self.spec = spec
        self.settings = settings
        self.prepared = asyncio.Event()
        if spec.prepare is None:
            self.prepared.set()
        self.server = aio.server(
            interceptors=[ErrorMappingInterceptor(spec.translate_error, gate=self._gate,
                                                  drain=lambda requests: drain_briefly(requests, settings)),
                          *spec.interceptors],
            options=server_options(settings),
        )
        self.health = health.aio.HealthServicer()
        self.port = 0
        self.metrics: MetricsEndpoint | None = None
        self._health_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.spec.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, [*self.spec.service_names,
                                        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name])
        credentials = server_credentials(self.settings, self.spec.name)
        if credentials is None:
            self.port = self.server.add_insecure_port(self.spec.address)
        else:
            self.port = self.server.add_secure_port(self.spec.address, credentials)
        await self._set_health(False)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        try:
            await asyncio.wait_for(self._prepare_once(), self.settings.prepare_at_start_seconds)
        except Exception as exc:  # noqa: BLE001 - the health loop keeps trying
            log.warning("service_not_prepared", service=self.spec.name, error=repr(exc))
        await self.server.start()
        self.metrics = MetricsEndpoint.start(self.spec.metrics_address)
        self._health_task = asyncio.create_task(self._watch_backends())
        log.info("service_started", service=self.spec.name, address=self.spec.address, port=self.port,
                 tls=credentials is not None, mutual_tls=bool(credentials and self.settings.tls_client_ca_file))

    def _gate(self, method: str) -> FramevaultError | None:
        if self.prepared.is_set() or not method.startswith(self._guarded_prefixes):
            return None
        return Unavailable(f"{self.spec.name} service is starting; retry", retry_after_ms=500)

    @property
    def _guarded_prefixes(self) -> tuple[str, ...]:
        return tuple(f"/{name}/" for name in self.spec.service_names)

    async def _prepare_once(self) -> None:
        if self.prepared.is_set() or self.spec.prepare is None:
            return
        await self.spec.prepare()
        self.prepared.set()
        log.info("service_prepared", service=self.spec.name)

    async def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self.spec.service_names):
            await self.health.set(name, status)

    async def _watch_backends(self) -> None:
        serving: bool | None = None
        while True:
            try:
                await self._prepare_once()
                ok = await self.spec.ready()
            except Exception:  # noqa: BLE001 - any backend failure means not ready
                ok = False
            if ok != serving:
                serving = ok
                await self._set_health(ok)
                log.info("health_changed", service=self.spec.name, serving=ok)
            await asyncio.sleep(self.settings.health_poll_seconds)

    async def stop(self, grace: float | None = None) -> None:
        # Health first, so load balancers stop sending before we refuse.
        if self._health_task:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.grpc_shutdown_grace_seconds if grace is None else grace)
        await self.spec.close()
        if self.metrics is not None:
            self.metrics.stop()
        log.info("service_stopped", service=self.spec.name)


async def run_service(spec: ServiceSpec, settings: Settings) -> None:
    running = RunningService(spec, settings)
    await running.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("service_stopping", service=spec.name)
    await running.stop()


def tune_garbage_collection(settings: Settings) -> None:
    """Cyclic garbage collection for a long-running server process.

    What is alive once the service is built (modules, protobuf descriptors,
    clients) lives as long as the process: frozen, it is left out of every
    later collection. And the young generation is collected after
    ``gc_young_threshold`` container allocations instead of 700: streaming
    thousands of frames a second allocates that many dicts, lists and messages
    in milliseconds, nearly all freed by reference counting anyway, so
    frequent collections only rescan live data (measured: about a fifth more
    frames per second iterated, a few percent more ingested).
    """
    gc.freeze()
    gc.set_threshold(settings.gc_young_threshold, settings.gc_middle_threshold, settings.gc_old_threshold)


def main(build_service: Callable[[Settings], ServiceSpec], argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m framevault.<service>``: settings from flags over
    the environment over the defaults, structured logs, serve until SIGTERM or Ctrl-C."""
    package = build_service.__module__.rpartition(".")[0]
    settings = Settings.from_args(argv, prog=f"python -m {package}")
    configure_logging(settings.log_level, settings.log_format)
    log.info("settings_loaded", **settings.displayed())
    asyncio.run(_build_and_run(build_service, settings))


async def _build_and_run(build_service: Callable[[Settings], ServiceSpec], settings: Settings) -> None:
    # The service is built inside the loop that serves it: gRPC aio channels
    # (to the other service) and database clients bind to the event loop that
    # is running when they are created, and fail on any other loop.
    spec = build_service(settings)
    tune_garbage_collection(settings)
    await run_service(spec, settings)
