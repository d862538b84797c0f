"""Fixtures of the process-level tier: the services as ``make run`` runs them.

``make_run`` starts ``deploy/local/run_services.py``, the command behind
``make run``, with free ports and this session's own database and bucket; the
tests then drive the services from other processes (the CLI, SDK scripts, the
generated clients) and over plain gRPC, like users do. ``separate_services``
starts each service through the same launcher code as its own process, so a
test can kill one of them and start it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import run_services
from minio import Minio
from pymongo import MongoClient
from support import free_port

from framevault.common.config import Settings
from framevault.v1 import blob_pb2_grpc, metadata_service_pb2_grpc

LAUNCHER = Path(run_services.__file__).resolve()
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

    def service_overrides(self) -> dict[str, str]:
        """Settings of a service process: this world, free ports, no metrics endpoint."""
        return {
            "FRAMEVAULT_MONGODB_DATABASE": self.database,
            "FRAMEVAULT_S3_BUCKET": self.bucket,
            "FRAMEVAULT_METADATA_ADDRESS": f"127.0.0.1:{free_port()}",
            "FRAMEVAULT_BLOB_ADDRESS": f"127.0.0.1:{free_port()}",
            "FRAMEVAULT_METADATA_METRICS_ADDRESS": "",
            "FRAMEVAULT_BLOB_METRICS_ADDRESS": "",
            "FRAMEVAULT_LOG_LEVEL": os.environ.get("FRAMEVAULT_TEST_LOG_LEVEL", "WARNING"),
        }


def caller_environment() -> dict[str, str]:
    """This process's environment without service targets someone exported for their own use."""
    return {key: value for key, value in os.environ.items() if key not in CLIENT_TARGET_VARIABLES}


@pytest.fixture(scope="session")
def world(stack_env: dict[str, str]) -> Iterator[World]:
    run_id = uuid.uuid4().hex[:10]
    created = World(database=f"fve2e_{run_id}", bucket=f"fve2e-{run_id}")
    settings = Settings.from_env({**os.environ, **stack_env})
    Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
          secure=settings.s3_secure, region=settings.s3_region).make_bucket(created.bucket)
    yield created
    with MongoClient(settings.mongodb_uri, serverSelectionTimeoutMS=settings.mongodb_timeout_ms) as mongo:
        mongo.drop_database(created.database)


@dataclass
class Endpoints:
    """Where running services listen, and how other processes reach them."""

    metadata_address: str
    blob_address: str

    def client_env(self) -> dict[str, str]:
        """The environment of a user's process (CLI, SDK script, generated client)."""
        return {**caller_environment(), "FRAMEVAULT_METADATA_TARGET": self.metadata_address,
                "FRAMEVAULT_BLOB_TARGET": self.blob_address}

    def metadata_stub(self) -> metadata_service_pb2_grpc.MetadataServiceStub:
        return metadata_service_pb2_grpc.MetadataServiceStub(channel(self.metadata_address))

    def blob_stub(self) -> blob_pb2_grpc.BlobServiceStub:
        return blob_pb2_grpc.BlobServiceStub(channel(self.blob_address))


_channels: dict[str, grpc.Channel] = {}


def channel(address: str) -> grpc.Channel:
    """One channel per address for the whole session, with the services' message limits."""
    if address not in _channels:
        _channels[address] = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    return _channels[address]


@pytest.fixture(scope="session")
def make_run(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """Both services started by ``make run``'s launcher, stopped with Ctrl-C at the end."""
    overrides = world.service_overrides()
    logs = tmp_path_factory.mktemp("make-run")
    banner_path, log_path = logs / "stdout.txt", logs / "services.log"
    with banner_path.open("wb") as stdout, log_path.open("wb") as stderr:
        launcher = subprocess.Popen([sys.executable, str(LAUNCHER)], env={**caller_environment(), **overrides},
                                    cwd=LAUNCHER.parents[2], stdout=stdout, stderr=stderr)
    try:
        wait_for_banner(launcher, banner_path, log_path)
        yield Endpoints(overrides["FRAMEVAULT_METADATA_ADDRESS"], overrides["FRAMEVAULT_BLOB_ADDRESS"])
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()


def wait_for_banner(launcher: subprocess.Popen[bytes], banner_path: Path, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while BANNER not in banner_path.read_text(errors="replace"):
        if launcher.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {launcher.returncode}" if launcher.poll() is not None else "is still starting"
            pytest.fail(f"run_services.py {state}; its output:\n{banner_path.read_text(errors='replace')}\n"
                        f"service logs:\n{log_path.read_text(errors='replace')[-6000:]}")
        time.sleep(0.2)


class SeparateServices(Endpoints):
    """Each service as its own process, started like ``make run`` starts it; either can be killed and restarted."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(env["FRAMEVAULT_METADATA_ADDRESS"], env["FRAMEVAULT_BLOB_ADDRESS"])
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, run_services.ServiceProcess] = {}

    def start(self, name: str) -> run_services.ServiceProcess:
        """Starts ``name`` (again, on the same address) and waits until it serves."""
        service = run_services.ServiceProcess.start(name, self.env, log_path=self.log_dir / f"{name}.log")
        self.processes[name] = service
        try:
            service.wait_serving(START_TIMEOUT_SECONDS)
        except run_services.ServiceNotServing as exc:
            pytest.fail(str(exc))
        return service

    def stop_all(self) -> None:
        for name in reversed(run_services.SERVICE_NAMES):
            if name in self.processes:
                self.processes[name].stop()


@pytest.fixture()
def separate_services(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeparateServices]:
    services = SeparateServices(run_services.service_env({**caller_environment(), **world.service_overrides()}),
                                tmp_path_factory.mktemp("services"))
    try:
        for name in run_services.SERVICE_NAMES:
            services.start(name)
        yield services
    finally:
        services.stop_all()
