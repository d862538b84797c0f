"""Both framevault services as child processes against the local stack: what ``make run`` starts.

``framevault-stack run`` (``make run``, after ``framevault-stack up``) starts the
blob and metadata services (``python -m framevault.blob`` /
``python -m framevault.metadata``) with the stack's environment, waits until
both report SERVING over gRPC health checking, then forwards stop signals so
each service shuts down gracefully (health NOT_SERVING first).

Settings the caller exported (``FRAMEVAULT_METADATA_ADDRESS``,
``FRAMEVAULT_MONGODB_DATABASE``, ``FRAMEVAULT_S3_BUCKET`` ...) win over the
stack's; the stack supplies the rest. Each service's target is where the
other one listens, unless set explicitly.

The end-to-end tests and the benchmark start services through
``service_env`` and ``ServiceProcess.start`` too, so they run them exactly as
``make run`` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .local import stack_env
from .settings import REPO_ROOT

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0

# Started in this order: the metadata service reaches the blob service.
SERVICE_NAMES = ("blob", "metadata")
MODULES = {"blob": "framevault.blob", "metadata": "framevault.metadata"}
ADDRESS_VARIABLES = {"blob": "FRAMEVAULT_BLOB_ADDRESS", "metadata": "FRAMEVAULT_METADATA_ADDRESS"}
DEFAULT_ADDRESSES = {"blob": "127.0.0.1:50052", "metadata": "127.0.0.1:50051"}
# Where each service reaches the other one.
TARGET_VARIABLES = {"FRAMEVAULT_BLOB_TARGET": "blob", "FRAMEVAULT_METADATA_TARGET": "metadata"}


def service_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment both services run with: the stack's settings under the caller's."""
    env = {**stack_env(), **(os.environ if environ is None else environ)}
    for name, variable in ADDRESS_VARIABLES.items():
        env.setdefault(variable, DEFAULT_ADDRESSES[name])
    for variable, name in TARGET_VARIABLES.items():
        env.setdefault(variable, env[ADDRESS_VARIABLES[name]])
    return env


class ServiceNotServing(RuntimeError):
    """A service process exited or did not become SERVING in time."""


@dataclass
class ServiceProcess:
    """One service running as its own process."""

    name: str
    address: str
    process: subprocess.Popen[bytes]
    # Where its stderr (the service's logs) goes, for error messages.
    log_path: Path | None = None

    @classmethod
    def start(
        cls, name: str, env: Mapping[str, str], *, command: Sequence[str] | None = None,
        stdout: int | IO[bytes] | None = None, log_path: Path | None = None,
    ) -> Self:
        """Starts one service (``python -m framevault.<name>``) with ``env``; does not wait for it.

        ``command`` replaces the interpreter call (the benchmark's profilers);
        with ``log_path`` the service's stderr is appended to that file.
        """
        argv = list(command) if command is not None else [sys.executable, "-m", MODULES[name]]
        stderr = log_path.open("ab") if log_path is not None else None
        try:
            process = subprocess.Popen(argv, env=dict(env), cwd=REPO_ROOT, stdout=stdout, stderr=stderr)
        finally:
            if stderr is not None:
                stderr.close()
        return cls(name, env[ADDRESS_VARIABLES[name]], process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_serving(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Returns once the service answers health checks with SERVING.

        Raises:
            ServiceNotServing: the process exited, or ``timeout`` passed.
        """
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.process.poll() is not None:
                    raise ServiceNotServing(f"{self.name} service exited with {self.process.returncode}"
                                            f"{self._log_tail()}")
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                    last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.RpcError as exc:
                    last = exc.code().name
                if time.monotonic() > deadline:
                    raise ServiceNotServing(f"{self.name} service at {self.address} not SERVING within "
                                            f"{timeout:.0f}s ({last}){self._log_tail()}")
                time.sleep(0.2)

    def terminate(self) -> None:
        """Asks the service to stop gracefully (SIGTERM), once it runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Stops the service gracefully; kills it if it takes longer than ``timeout``."""
        self.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """SIGKILL: the service gets no chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def _log_tail(self, lines: int = 30) -> str:
        if self.log_path is None:
            return ""
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"; last lines of {self.log_path}:\n" + "\n".join(tail)


def run() -> int:
    """Runs both services until Ctrl-C or SIGTERM; returns the exit status."""
    env = service_env()
    children = [ServiceProcess.start(name, env) for name in SERVICE_NAMES]

    stopping = False

    def stop(*_: object) -> None:
        # Once only: a second SIGTERM could land after a service's loop has
        # removed its handler and kill it mid-shutdown.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children:
            child.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for child in children:
            child.wait_serving(max(deadline - time.monotonic(), 0.0))
    except ServiceNotServing as exc:
        stop()
        raise SystemExit(str(exc)) from None
    addresses = {child.name: child.address for child in children}
    print(f"framevault is up: metadata {addresses['metadata']}, blob {addresses['blob']} (Ctrl-C stops)",
          flush=True)
    while all(child.process.poll() is None for child in children):
        time.sleep(0.5)
    stop()
    codes = [child.process.wait() for child in children]
    return max(abs(code) for code in codes)
