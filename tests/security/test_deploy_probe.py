"""The Kubernetes exec probe (deploy/k8s/probe.py) asks a service's health over mutual TLS, as the
kubelet's plaintext gRPC probes cannot."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from support import local_pki

from framevault.common.server import LIVENESS_SERVICE, RunningService

PROBE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "probe.py"


async def probe(port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the session's services answer on this event loop.
    return await asyncio.to_thread(subprocess.run, [sys.executable, str(PROBE), str(port), *args], env=env,
                                   capture_output=True, text=True, timeout=60, check=False)


async def test_the_probe_asks_the_health_service_over_mutual_tls(metadata_service: RunningService) -> None:
    pki = local_pki()
    tls = {"FRAMEVAULT_TLS_CA_FILE": str(pki.ca_file), "FRAMEVAULT_TLS_CLIENT_CERT_FILE": str(pki.client.cert_file),
           "FRAMEVAULT_TLS_CLIENT_KEY_FILE": str(pki.client.key_file)}
    for name in ((), (LIVENESS_SERVICE,)):
        answered = await probe(metadata_service.port, *name, **tls)
        assert answered.returncode == 0, answered.stderr
    # Without the client certificate the service refuses the handshake: the probe fails.
    refused = await probe(metadata_service.port, FRAMEVAULT_TLS_CA_FILE=str(pki.ca_file))
    assert refused.returncode != 0
