"""``python -m framevault.gateway``: serves the web app and its HTTP API (uvicorn)."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
import uvicorn

from framevault.api.transport import target_host_port
from framevault.common.config import Settings, env_name
from framevault.common.logs import configure_logging
from framevault.common.tls import TransportSettingsError
from framevault.gateway.app import build_app

log = structlog.get_logger("framevault.gateway")


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
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False,
                ssl_certfile=settings.gateway_tls_cert_file or None, ssl_keyfile=settings.gateway_tls_key_file or None,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=int(settings.grpc_shutdown_grace_seconds))


if __name__ == "__main__":
    main()
