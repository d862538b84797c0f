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

``run`` runs the services with security on (the stack's secrets, from
``framevault-stack env``): the metadata service issues an admin API key into
``<stack>/admin.key`` on its first start against a database (setting
``bootstrap_admin_key_file``; ``admin-<database>.key`` for another database). ``run(secure=True)`` (``make run``:
``framevault-stack run --secure``) serves mutual TLS with the local CA's
certificates too and writes the client config file the CLI and SDK read
without flags (``write_client_config``), the admin key as their token.
"""

from __future__ import annotations

import json
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

from .gateway import GATEWAY, GatewayNotReady, gateway_env, start_gateway, wait_gateway_ready, web_app_url
from .local import Stack, stack_env
from .pki import LocalPki
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


def service_env(environ: Mapping[str, str] | None = None, *, plaintext: bool = True) -> dict[str, str]:
    """The environment both services run with: the stack's settings under the caller's.

    ``plaintext``: the services listen and call each other in plaintext unless the caller's settings
    say otherwise (``allow_plaintext`` set explicitly: the services refuse plaintext by default).
    """
    env = {**stack_env(), **(os.environ if environ is None else environ)}
    if plaintext:
        env.setdefault("FRAMEVAULT_ALLOW_PLAINTEXT", "true")
    for name, variable in ADDRESS_VARIABLES.items():
        env.setdefault(variable, DEFAULT_ADDRESSES[name])
    for variable, name in TARGET_VARIABLES.items():
        env.setdefault(variable, env[ADDRESS_VARIABLES[name]])
    return env


def service_channel_credentials(env: Mapping[str, str]) -> grpc.ChannelCredentials | None:
    """What a service started with ``env`` calls the other with, for health checks: ``None`` if it serves plaintext."""
    if not env.get("FRAMEVAULT_TLS_CERT_FILE"):
        return None

    def pem(variable: str) -> bytes | None:
        return Path(env[variable]).read_bytes() if env.get(variable) else None

    return grpc.ssl_channel_credentials(pem("FRAMEVAULT_TLS_CA_FILE"), pem("FRAMEVAULT_TLS_CLIENT_KEY_FILE"),
                                        pem("FRAMEVAULT_TLS_CLIENT_CERT_FILE"))


# First line of a client config file make run wrote, so it only ever replaces its own.
CLIENT_CONFIG_MARKER = "# Written by `make run` (framevault-stack run --secure); it replaces this file each run."


def write_client_config(pki: LocalPki, env: Mapping[str, str], stack_dir: Path) -> Path:
    """The CLI and SDK settings of the local services (targets, CA, client certificate, admin key if any).

    Written where clients look without flags (``$FRAMEVAULT_CONFIG``, else
    ``~/.config/framevault/client.toml``) unless a file there was not written
    by ``make run``; else into the stack folder. Returns where it went.
    """
    from framevault.sdk.settings import default_config_path

    values = {"metadata_target": env[ADDRESS_VARIABLES["metadata"]], "blob_target": env[ADDRESS_VARIABLES["blob"]],
              "ca_file": pki.ca_file, "client_cert_file": pki.client.cert_file,
              "client_key_file": pki.client.key_file}
    if env.get("FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE"):
        values["token_file"] = Path(env["FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE"]).resolve()
    # A JSON string is a TOML basic string.
    lines = [CLIENT_CONFIG_MARKER, *(f"{key} = {json.dumps(str(value))}" for key, value in values.items())]
    text = "\n".join(lines) + "\n"
    target = default_config_path(os.environ)
    if target is None or (target.exists() and not target.read_text().startswith(CLIENT_CONFIG_MARKER)):
        target = stack_dir / "client.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


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
    # How health checks reach it: TLS when it serves TLS (its env's FRAMEVAULT_TLS_* files).
    health_credentials: grpc.ChannelCredentials | None = None

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
        return cls(name, env[ADDRESS_VARIABLES[name]], process, log_path, service_channel_credentials(env))

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
        channel = (grpc.insecure_channel(self.address) if self.health_credentials is None
                   else grpc.secure_channel(self.address, self.health_credentials))
        with channel:
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


DEFAULT_DATABASE = "framevault"


def admin_key_file(stack_dir: Path, database: str) -> Path:
    """Where ``run`` has the metadata service write the admin key it issues for ``database``: one file
    per database, so a run against another database never replaces the default database's key."""
    return stack_dir / ("admin.key" if database == DEFAULT_DATABASE else f"admin-{database}.key")


def run(secure: bool = False) -> int:
    """Runs both services until Ctrl-C or SIGTERM; returns the exit status.

    ``secure``: mutual TLS with the local CA (settings the caller exported still win).
    """
    stack = Stack()
    env = service_env(plaintext=not secure)
    env.setdefault("FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE", str(admin_key_file(
        stack.dir, env.get("FRAMEVAULT_MONGODB_DATABASE") or DEFAULT_DATABASE)))
    envs = {name: env for name in SERVICE_NAMES}
    client_config: Path | None = None
    if secure:
        pki = stack.pki()
        envs = {name: {**pki.service_env(name), **env} for name in SERVICE_NAMES}
        client_config = write_client_config(pki, env, stack.dir)
    children = [ServiceProcess.start(name, envs[name]) for name in SERVICE_NAMES]

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
    # The web app, once the services answer: its health check asks both.
    gateway_environ = gateway_env(env, Stack().pki() if secure else None)
    web_app = web_app_url(gateway_environ)
    children.append(ServiceProcess(GATEWAY, web_app, start_gateway(gateway_environ)))
    try:
        wait_gateway_ready(children[-1].process, web_app, READY_TIMEOUT_SECONDS)
    except GatewayNotReady as exc:
        stop()
        raise SystemExit(str(exc)) from None
    addresses = {child.name: child.address for child in children}
    print(f"framevault is up: metadata {addresses['metadata']}, blob {addresses['blob']} (Ctrl-C stops)",
          flush=True)
    print(f"web app: {web_app}", flush=True)
    if env.get("FRAMEVAULT_SECURITY_MODE", "on") == "on":
        admin_key = Path(env["FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE"]).resolve()
        print(f"admin API key: {admin_key}" + ("" if admin_key.exists() else
              " (not written: this database holds an admin key already; issue one with CreateApiKey)"),
              flush=True)
    if client_config is not None:
        stack_dir = stack.dir
        print(f"mutual TLS with the local CA in {stack_dir / 'tls'}; CLI and SDK settings: {client_config}"
              + (f" (not the default location: export FRAMEVAULT_CONFIG={client_config})"
                 if client_config.parent == stack_dir else ""), flush=True)
    while all(child.process.poll() is None for child in children):
        time.sleep(0.5)
    stop()
    codes = [child.process.wait() for child in children]
    return max(abs(code) for code in codes)
