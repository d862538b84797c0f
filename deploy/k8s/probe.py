"""Kubernetes exec probe: a service's grpc.health.v1 answer, over TLS as the service serves it.

The kubelet's own gRPC probes speak plaintext only. Usage: ``python probe.py <port> [<health name>]``;
exit 0 when the name (default: the whole service) is SERVING. It trusts FRAMEVAULT_TLS_CA_FILE and
presents the service's own client certificate (FRAMEVAULT_TLS_CLIENT_CERT_FILE / _KEY_FILE), which
a service requiring mutual TLS accepts; the server certificate must name ``localhost``. Health
checks need no token.
"""

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def pem(variable: str) -> bytes | None:
    path = os.environ.get(variable)
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()


def main() -> int:
    port, name = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    credentials = grpc.ssl_channel_credentials(pem("FRAMEVAULT_TLS_CA_FILE"), pem("FRAMEVAULT_TLS_CLIENT_KEY_FILE"),
                                               pem("FRAMEVAULT_TLS_CLIENT_CERT_FILE"))
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=name), timeout=2.5)
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
