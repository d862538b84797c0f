"""Runs both services against the local stack until Ctrl-C or SIGTERM.

Started by ``make run`` after ``stack.py up``: reads the stack's environment,
starts the blob and metadata services as child processes, waits until both
report SERVING over gRPC health checking, then forwards stop signals so each
service shuts down gracefully (health NOT_SERVING first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
READY_TIMEOUT_SECONDS = 60.0


def stack_env() -> dict[str, str]:
    out = subprocess.run([sys.executable, str(HERE / "stack.py"), "env"], check=True, capture_output=True, text=True)
    env: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip("'\"")
    return env


def wait_serving(address: str, deadline: float) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"service at {address} did not become SERVING within {READY_TIMEOUT_SECONDS:.0f}s")
            time.sleep(0.2)


def main() -> int:
    env = {**os.environ, **stack_env()}
    metadata_address = env.setdefault("FRAMEVAULT_METADATA_ADDRESS", "127.0.0.1:50051")
    blob_address = env.setdefault("FRAMEVAULT_BLOB_ADDRESS", "127.0.0.1:50052")
    env.setdefault("FRAMEVAULT_BLOB_TARGET", blob_address)
    children = [
        subprocess.Popen([sys.executable, "-m", "framevault.blob"], env=env, cwd=REPO),
        subprocess.Popen([sys.executable, "-m", "framevault.metadata"], env=env, cwd=REPO),
    ]

    stopping = False

    def stop(*_: object) -> None:
        # Once only: a second SIGTERM could land after a service's loop has
        # removed its handler and kill it mid-shutdown.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        wait_serving(blob_address, deadline)
        wait_serving(metadata_address, deadline)
    except SystemExit:
        stop()
        raise
    print(f"framevault is up: metadata {metadata_address}, blob {blob_address} (Ctrl-C stops)", flush=True)
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    stop()
    codes = [child.wait() for child in children]
    return max(abs(code) for code in codes)


if __name__ == "__main__":
    sys.exit(main())
