"""The services as ``make run`` runs them, for the process-level tests.

``wait_for_banner`` waits for ``framevault-stack run``, the command
behind ``make run``; ``SeparateServices`` starts each service through the same
launcher code as its own process, so a test can kill one and start it again.
``Endpoints`` is how other processes (the CLI, SDK scripts, the generated
clients) and plain gRPC calls reach them; ``SecureEndpoints`` the same for
``make run`` as the Makefile runs it (``--secure``: mutual TLS, client config file).
Every service runs with security on: the first metadata service of a world
issues its admin key into ``World.admin_key_file``, the token every client sends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from support import free_port

from framevault.api.transport import with_token
from framevault.stack.services import SERVICE_NAMES, ServiceNotServing, ServiceProcess
from framevault.v1 import blob_pb2_grpc, metadata_service_pb2_grpc

# `make run`: `framevault-stack run`, with this interpreter.
LAUNCHER = [sys.executable, "-m", "framevault.stack", "run"]
# What the launcher prints once both services answer SERVING.
BANNER = "framevault is up"
# Both services wait for their backends first; on a busy machine that takes a while.
START_TIMEOUT_SECONDS = 120.0
# The SDK and the services read these; the session's own values must not be shadowed.
CLIENT_TARGET_VARIABLES = ("FRAMEVAULT_METADATA_TARGET", "FRAMEVAULT_BLOB_TARGET")


@dataclass(frozen=True)
class World:
    """The database and bucket this session's processes share, nothing else uses."""

    database: str
    bucket: str
    # Where the world's first metadata service writes the admin key it issues (bootstrap_admin_key_file).
    admin_key_file: Path

    @property
    def token(self) -> str:
        """The world's admin key, once a metadata service of the world has started."""
        return self.admin_key_file.read_text().strip()

    def service_overrides(self) -> dict[str, str]:
        """Settings of a service process: this world, free ports, no metrics endpoint, the admin key file."""
        return {
            "FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE": str(self.admin_key_file),
            "FRAMEVAULT_MONGODB_DATABASE": self.database,
            "FRAMEVAULT_S3_BUCKET": self.bucket,
            "FRAMEVAULT_METADATA_ADDRESS": f"127.0.0.1:{free_port()}",
            "FRAMEVAULT_BLOB_ADDRESS": f"127.0.0.1:{free_port()}",
            "FRAMEVAULT_GATEWAY_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
            "FRAMEVAULT_METADATA_METRICS_ADDRESS": "",
            "FRAMEVAULT_BLOB_METRICS_ADDRESS": "",
            "FRAMEVAULT_LOG_LEVEL": os.environ.get("FRAMEVAULT_TEST_LOG_LEVEL", "WARNING"),
        }


def caller_environment() -> dict[str, str]:
    """This process's environment without service targets someone exported for their own use."""
    return {key: value for key, value in os.environ.items() if key not in CLIENT_TARGET_VARIABLES}





@dataclass
class Endpoints:
    """Where running services listen, and how other processes reach them."""

    metadata_address: str
    blob_address: str
    # The services' admin key (the bootstrap admin key file of their database).
    admin_key_file: Path

    @property
    def token(self) -> str:
        return self.admin_key_file.read_text().strip()

    def client_env(self) -> dict[str, str]:
        """The environment of a user's process (CLI, SDK script, generated client): plaintext, the admin key."""
        return {**caller_environment(), "FRAMEVAULT_METADATA_TARGET": self.metadata_address,
                "FRAMEVAULT_BLOB_TARGET": self.blob_address, "FRAMEVAULT_PLAINTEXT": "true",
                "FRAMEVAULT_TOKEN": self.token}

    def metadata_stub(self) -> metadata_service_pb2_grpc.MetadataServiceStub:
        return metadata_service_pb2_grpc.MetadataServiceStub(
            channel(self.metadata_address, self.tls_credentials(), token=self.token))

    def blob_stub(self) -> blob_pb2_grpc.BlobServiceStub:
        return blob_pb2_grpc.BlobServiceStub(channel(self.blob_address, self.tls_credentials(), token=self.token))

    def tls_credentials(self) -> grpc.ChannelCredentials | None:
        """How plain gRPC calls of the tests reach the services (with the admin key): plaintext to this machine."""
        return None


@dataclass
class SecureEndpoints(Endpoints):
    """Services serving mutual TLS with the local CA, as ``make run`` (``framevault-stack run --secure``) starts them."""

    # FRAMEVAULT_CA_FILE, FRAMEVAULT_CLIENT_CERT_FILE, FRAMEVAULT_CLIENT_KEY_FILE of the local CA's client.
    client_tls_env: dict[str, str] = field(default_factory=dict)
    # The XDG_CONFIG_HOME the launcher wrote framevault/client.toml into.
    config_home: Path = Path()
    # What the launcher printed.
    output: Path = Path()

    def client_env(self) -> dict[str, str]:
        """A client process told everything by variables (the generated clients read no config file)."""
        plain = {key: value for key, value in super().client_env().items() if key != "FRAMEVAULT_PLAINTEXT"}
        return {**plain, **self.client_tls_env}

    def config_file_env(self) -> dict[str, str]:
        """A user's process that sets nothing: the CLI and SDK find the config file ``make run`` wrote."""
        environment = {key: value for key, value in caller_environment().items() if key != "FRAMEVAULT_CONFIG"}
        return {**environment, "XDG_CONFIG_HOME": str(self.config_home)}

    def tls_credentials(self) -> grpc.ChannelCredentials | None:
        def pem(variable: str) -> bytes:
            return Path(self.client_tls_env[variable]).read_bytes()

        return grpc.ssl_channel_credentials(pem("FRAMEVAULT_CA_FILE"), pem("FRAMEVAULT_CLIENT_KEY_FILE"),
                                            pem("FRAMEVAULT_CLIENT_CERT_FILE"))


_channels: dict[str, grpc.Channel] = {}


def channel(address: str, credentials: grpc.ChannelCredentials | None = None, *, token: str = "") -> grpc.Channel:
    """One channel per address for the whole session, with the services' message limits; plaintext
    unless ``credentials`` say otherwise, sending ``token`` on every call when one is given."""
    if address not in _channels:
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024)]
        opened = (grpc.insecure_channel(address, options=options) if credentials is None
                  else grpc.secure_channel(address, credentials, options=options))
        _channels[address] = with_token(opened, credentials is not None, address, token or None)
    return _channels[address]





def wait_for_banner(launcher: subprocess.Popen[bytes], banner_path: Path, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while BANNER not in banner_path.read_text(errors="replace"):
        if launcher.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {launcher.returncode}" if launcher.poll() is not None else "is still starting"
            pytest.fail(f"framevault-stack run {state}; its output:\n{banner_path.read_text(errors='replace')}\n"
                        f"service logs:\n{log_path.read_text(errors='replace')[-6000:]}")
        time.sleep(0.2)


class SeparateServices(Endpoints):
    """Each service as its own process, started like ``make run`` starts it; either can be killed and restarted."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(env["FRAMEVAULT_METADATA_ADDRESS"], env["FRAMEVAULT_BLOB_ADDRESS"],
                         Path(env["FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE"]))
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, ServiceProcess] = {}

    def start(self, name: str) -> ServiceProcess:
        """Starts ``name`` (again, on the same address) and waits until it serves."""
        service = ServiceProcess.start(name, self.env, log_path=self.log_dir / f"{name}.log")
        self.processes[name] = service
        try:
            service.wait_serving(START_TIMEOUT_SECONDS)
        except ServiceNotServing as exc:
            pytest.fail(str(exc))
        return service

    def stop_all(self) -> None:
        for name in reversed(SERVICE_NAMES):
            if name in self.processes:
                self.processes[name].stop()
