"""The web gateway (``python -m framevault.gateway``) as a child process of ``framevault-stack run``.

It starts once both services are SERVING, with the services' environment (the stack's secrets,
among them ``gateway_session_secret``) and, when the services serve mutual TLS, the local CA and the
client certificate to call them with. It is ready when its health endpoint answers: that endpoint
asks both services, so a 200 means the web app works end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from .pki import LocalPki
from .settings import REPO_ROOT

GATEWAY = "gateway"
ADDRESS_VARIABLE = "FRAMEVAULT_GATEWAY_LISTEN_ADDRESS"
DEFAULT_ADDRESS = "127.0.0.1:8080"


def gateway_env(env: Mapping[str, str], pki: LocalPki | None) -> dict[str, str]:
    """The gateway's environment: the services' settings, its address, and (``pki``) how it calls
    services that require a client certificate."""
    gateway = dict(env)
    gateway.setdefault(ADDRESS_VARIABLE, DEFAULT_ADDRESS)
    if pki is not None:
        gateway.setdefault("FRAMEVAULT_TLS_CA_FILE", str(pki.ca_file))
        gateway.setdefault("FRAMEVAULT_TLS_CLIENT_CERT_FILE", str(pki.client.cert_file))
        gateway.setdefault("FRAMEVAULT_TLS_CLIENT_KEY_FILE", str(pki.client.key_file))
    return gateway


def web_app_url(env: Mapping[str, str]) -> str:
    scheme = "https" if env.get("FRAMEVAULT_GATEWAY_TLS_CERT_FILE") else "http"
    return f"{scheme}://{env.get(ADDRESS_VARIABLE, DEFAULT_ADDRESS)}"


class GatewayNotReady(RuntimeError):
    """The gateway process exited or its health endpoint did not answer 200 in time."""


def start_gateway(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Starts ``python -m framevault.gateway`` with ``env`` (from the repository, where the web app's
    default folder clients/web/dist is); does not wait for it."""
    return subprocess.Popen([sys.executable, "-m", "framevault.gateway"], env=dict(env), cwd=REPO_ROOT)


def wait_gateway_ready(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    """Returns once ``url``/api/healthz answers 200.

    Raises:
        GatewayNotReady: the process exited, or ``timeout`` passed.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if process.poll() is not None:
            raise GatewayNotReady(f"gateway exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/healthz", timeout=2.0) as answer:  # noqa: S310 - our own URL
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            try:
                last = f"HTTP {exc.code}: {json.loads(exc.read()).get('services')}"
            except ValueError:
                last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise GatewayNotReady(f"gateway at {url} not ready within {timeout:.0f}s ({last})")
        time.sleep(0.2)
