"""``python -m framevault.gateway``: serves the web app and its HTTP API (uvicorn)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Sequence

import structlog
import uvicorn

from framevault.api.transport import target_host_port
from framevault.common.config import Settings, env_name
from framevault.common.logs import configure_logging
from framevault.common.tls import TransportSettingsError
from framevault.gateway.app import build_app

log = structlog.get_logger("framevault.gateway")


class GatewayServer(uvicorn.Server):
    """uvicorn's server, except that SIGTERM or Ctrl-C end the process with status 0 once the graceful
    shutdown is done, as the services end (uvicorn raises the signal again, ending with its status)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> None:
    settings = Settings.from_args(argv, prog="python -m framevault.gateway")
    configure_logging(settings.log_level, settings.log_format)
    log.info("settings_loaded", **settings.displayed())
    host, port = target_host_port(settings.gateway_listen_address)
    if port is None:
        raise SystemExit(f"gateway_listen_address ({env_name('gateway_listen_address')}) must be host:port, "
                         f"not {settings.gateway_listen_address!r}")
    if bool(settings.gateway_tls_cert_file) != bool(settings.gateway_tls_key_file):
        raise TransportSettingsError("gateway_tls_cert_file and gateway_tls_key_file "
                                     f"({env_name('gateway_tls_cert_file')}, {env_name('gateway_tls_key_file')}) "
                                     "are set together or not at all")
    app = build_app(settings)
    scheme = "https" if settings.gateway_tls_cert_file else "http"
    log.info("gateway_listening", url=f"{scheme}://{settings.gateway_listen_address}")
    config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False,
                            ssl_certfile=settings.gateway_tls_cert_file or None,
                            ssl_keyfile=settings.gateway_tls_key_file or None, proxy_headers=False,
                            server_header=False,
                            timeout_graceful_shutdown=int(settings.grpc_shutdown_grace_seconds))
    GatewayServer(config).run()


if __name__ == "__main__":
    main()
