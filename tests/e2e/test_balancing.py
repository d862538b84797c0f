"""Several replicas behind one target: the SDK and the service-to-service channels spread calls over them.

Two metadata and two blob processes serve mutual TLS with the local CA and
check callers (security on), against the session's database and bucket. Each metadata replica's ``blob_target`` names
both blob replicas (``host:port,host:port``), each blob replica's
``metadata_target`` both metadata replicas. Which replica served a call is read
from that replica's own ``/metrics`` endpoint (``framevault_rpcs_handled_total``
by method), never inferred from the client's side.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import client_tls_settings, free_port, security_env, start_blob_service, sync_channel_to

from framevault.api.transport import parse_target
from framevault.common.channels import service_channel
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.common.tls import TransportSettingsError
from framevault.sdk.client import FramevaultClient
from framevault.sdk.errors import FramevaultError
from framevault.sdk.settings import ClientSettings, SettingsError
from framevault.stack.services import ServiceNotServing, ServiceProcess, service_env
from framevault.v1 import blob_pb2, blob_pb2_grpc, frame_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

from .flows import create_dataset, store_blob, unique, upload_frames
from .launch import START_TIMEOUT_SECONDS, World, caller_environment

METADATA_SERVICE = "framevault.v1.MetadataService"
BLOB_SERVICE = "framevault.v1.BlobService"
# Calls made while waiting for a replica's connection to become ready, at most; round-robin then
# alternates between ready replicas, so both have served calls long before this.
MAX_CALLS_UNTIL_BOTH_SERVE = 200
CALLS = 20


@dataclass
class Replica:
    process: ServiceProcess
    env: dict[str, str]
    metrics_address: str

    @property
    def port(self) -> int:
        return int(self.process.address.rpartition(":")[2])

    def handled(self, service: str, method: str) -> int:
        """Calls of ``service``/``method`` this process completed, whatever their status, by its own count."""
        with urllib.request.urlopen(f"http://{self.metrics_address}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        return int(sum(sample.value for family in text_string_to_metric_families(text)
                       for sample in family.samples
                       if sample.name == "framevault_rpcs_handled_total"
                       and sample.labels.get("grpc_service") == service
                       and sample.labels.get("grpc_method") == method))

    def restart(self) -> None:
        self.process = ServiceProcess.start(self.process.name, self.env, log_path=self.process.log_path)
        wait_serving([self])


@dataclass
class Replicas:
    metadata: list[Replica]
    blob: list[Replica]

    @staticmethod
    def target(replicas: list[Replica]) -> str:
        return ",".join(r.process.address for r in replicas)

    def client_settings(self, **changes: object) -> ClientSettings:
        return ClientSettings(**{"metadata_target": self.target(self.metadata), "blob_target": self.target(self.blob),
                                 **client_tls_settings(), **changes})  # type: ignore[arg-type]


def wait_serving(replicas: list[Replica]) -> None:
    for replica in replicas:
        try:
            replica.process.wait_serving(START_TIMEOUT_SECONDS)
        except ServiceNotServing as exc:
            pytest.fail(str(exc))


@pytest.fixture(scope="module")
def replicas(settings: Settings, metadata_service: RunningService,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    # Replicas of the session's own services: its database (where the session's admin key, the
    # token of every test client, is stored), its bucket and its security settings.
    world = World(database=settings.mongodb_database, bucket=settings.s3_bucket,
                  admin_key_file=Path(settings.bootstrap_admin_key_file))
    logs = tmp_path_factory.mktemp("balancing")
    shared = service_env({**caller_environment(), **world.service_overrides(), **security_env(settings)},
                         plaintext=False)
    metadata_addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    blob_addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    metadata: list[Replica] = []
    blob: list[Replica] = []
    try:
        for letter, metadata_address, blob_address in zip("ab", metadata_addresses, blob_addresses, strict=True):
            metrics = f"127.0.0.1:{free_port()}"
            env = {**shared, "FRAMEVAULT_BLOB_ADDRESS": blob_address, "FRAMEVAULT_BLOB_METRICS_ADDRESS": metrics,
                   "FRAMEVAULT_METADATA_TARGET": ",".join(metadata_addresses)}
            blob.append(Replica(ServiceProcess.start("blob", env, log_path=logs / f"blob-{letter}.log"), env, metrics))
            metrics = f"127.0.0.1:{free_port()}"
            env = {**shared, "FRAMEVAULT_METADATA_ADDRESS": metadata_address,
                   "FRAMEVAULT_METADATA_METRICS_ADDRESS": metrics, "FRAMEVAULT_BLOB_TARGET": ",".join(blob_addresses)}
            metadata.append(Replica(ServiceProcess.start("metadata", env, log_path=logs / f"metadata-{letter}.log"),
                                    env, metrics))
        wait_serving([*blob, *metadata])
        yield Replicas(metadata, blob)
    finally:
        for replica in [*metadata, *blob]:
            replica.process.stop()


async def list_datasets(client: FramevaultClient) -> None:
    await client.unary(client.metadata.ListDatasets, ms.ListDatasetsRequest(page_size=1), idempotent=True)


async def get_capabilities(client: FramevaultClient) -> None:
    await client.unary(client.blob.GetCapabilities, blob_pb2.GetCapabilitiesRequest(), idempotent=True)


async def test_the_sdk_given_both_addresses_spreads_calls_over_both_replicas_of_each_service(
        replicas: Replicas) -> None:
    async with FramevaultClient(replicas.client_settings()) as client:
        for call, group, service, method in ((list_datasets, replicas.metadata, METADATA_SERVICE, "ListDatasets"),
                                             (get_capabilities, replicas.blob, BLOB_SERVICE, "GetCapabilities")):
            before = [r.handled(service, method) for r in group]
            for _ in range(MAX_CALLS_UNTIL_BOTH_SERVE):
                await call(client)
                if all(r.handled(service, method) > b for r, b in zip(group, before, strict=True)):
                    break
            assert all(r.handled(service, method) > b for r, b in zip(group, before, strict=True)), method
            # Both connections are ready now: round-robin alternates between them.
            before = [r.handled(service, method) for r in group]
            for _ in range(CALLS):
                await call(client)
            served = [r.handled(service, method) - b for r, b in zip(group, before, strict=True)]
            assert sum(served) == CALLS and min(served) >= CALLS // 4, (method, served)


async def test_the_sdk_keeps_working_on_the_other_replica_when_one_is_stopped(replicas: Replicas) -> None:
    stopped, remaining = replicas.metadata
    async with FramevaultClient(replicas.client_settings()) as client:
        await list_datasets(client)
        stopped.process.kill()
        try:
            before = remaining.handled(METADATA_SERVICE, "ListDatasets")
            for _ in range(CALLS):
                await list_datasets(client)
            assert remaining.handled(METADATA_SERVICE, "ListDatasets") - before == CALLS
        finally:
            stopped.restart()


def test_a_metadata_service_whose_blob_target_names_two_replicas_uses_both(replicas: Replicas) -> None:
    metadata = metadata_service_pb2_grpc.MetadataServiceStub(sync_channel_to(replicas.metadata[0].port))
    blobs = blob_pb2_grpc.BlobServiceStub(sync_channel_to(replicas.blob[0].port))
    version = create_dataset(metadata, unique("balanced"))
    before = [r.handled(BLOB_SERVICE, "FindMissingBlobs") for r in replicas.blob]

    def both_asked() -> bool:
        return all(r.handled(BLOB_SERVICE, "FindMissingBlobs") > b
                   for r, b in zip(replicas.blob, before, strict=True))

    # Each upload that references a blob makes the metadata service ask the blob service whether it exists.
    for n in range(MAX_CALLS_UNTIL_BOTH_SERVE):
        uri = store_blob(blobs, f"frame {n} {uuid.uuid4()}".encode())
        results = upload_frames(metadata, version, [frame_pb2.Frame(
            id=f"f{n}", context_id="c", timestamp=n,
            sources=[frame_pb2.Source(uri=uri, content_type="application/octet-stream")])])
        assert [r.outcome for r in results] == [ms.FrameResult.OUTCOME_CREATED]
        if both_asked():
            break
    assert both_asked()


async def test_a_dns_target_reaches_the_service(replicas: Replicas) -> None:
    replica = replicas.metadata[1]
    settings = replicas.client_settings(metadata_target=f"dns:///localhost:{replica.port}")
    before = replica.handled(METADATA_SERVICE, "ListDatasets")
    async with FramevaultClient(settings) as client:
        for _ in range(3):
            await list_datasets(client)
    assert replica.handled(METADATA_SERVICE, "ListDatasets") - before == 3


async def test_certificates_of_an_address_list_are_checked_against_its_host(settings: Settings) -> None:
    # The local server certificate is valid for 127.0.0.1, not 127.0.0.2: a list of 127.0.0.2
    # addresses is checked against 127.0.0.2 and refused, not let through by a name override.
    services = [await start_blob_service(Settings(**{**settings.__dict__, "blob_address": "127.0.0.2:0",
                                                     "blob_metrics_address": ""})) for _ in range(2)]
    try:
        target = ",".join(f"127.0.0.2:{s.port}" for s in services)
        async with FramevaultClient(ClientSettings(blob_target=target, unary_attempts=1,
                                                   **client_tls_settings())) as client:  # type: ignore[arg-type]
            with pytest.raises(FramevaultError) as refused:
                await get_capabilities(client)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert "Hostname Verification" in str(refused.value)
    finally:
        for service in services:
            await service.stop(grace=0)


@pytest.mark.parametrize(("target", "uri", "authority"), [
    ("127.0.0.1:50051", "127.0.0.1:50051", None),
    ("dns:///metadata.example:50051", "dns:///metadata.example:50051", None),
    ("127.0.0.1:1, 127.0.0.1:2", "ipv4:127.0.0.1:1,127.0.0.1:2", "127.0.0.1"),
    ("ipv4:10.0.0.1:1,10.0.0.1:2", "ipv4:10.0.0.1:1,10.0.0.1:2", "10.0.0.1"),
    ("[::1]:1,[::1]:2", "ipv6:[::1]:1,[::1]:2", "[::1]"),
    ("unix:/tmp/fv.sock", "unix:/tmp/fv.sock", None),
])
def test_targets_as_channels_dial_them(target: str, uri: str, authority: str | None) -> None:
    dialled = parse_target(target, tls=True)
    assert (dialled.uri, dialled.authority) == (uri, authority)
    assert ("grpc.lb_policy_name", "round_robin") in dialled.channel_options()


@pytest.mark.parametrize(("target", "tls", "reason"), [
    ("metadata-0.example:1,metadata-1.example:1", False, "dns:///name:port"),
    ("127.0.0.1:1,[::1]:2", False, "cannot be mixed"),
    ("127.0.0.1:1,127.0.0.1", False, "has no port"),
    ("dns:///a:1,b:2", False, "one name"),
    ("10.0.0.1:1,10.0.0.2:1", True, "different hosts"),
    ("", False, "no target"),
])
def test_targets_that_cannot_be_dialled_are_refused_saying_why(target: str, tls: bool, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_target(target, tls=tls)


def test_different_hosts_are_one_list_in_plaintext() -> None:
    assert parse_target("10.0.0.1:1,10.0.0.2:1", tls=False).uri == "ipv4:10.0.0.1:1,10.0.0.2:1"


async def test_a_bad_sdk_target_names_its_setting() -> None:
    with pytest.raises(SettingsError, match=r"blob_target \(FRAMEVAULT_BLOB_TARGET\): .*different hosts"):
        FramevaultClient(ClientSettings(metadata_target="127.0.0.1:1", blob_target="10.0.0.1:1,10.0.0.2:1",
                                        **client_tls_settings()))  # type: ignore[arg-type]


async def test_a_bad_service_target_names_its_setting(settings: Settings) -> None:
    bad = Settings(**{**settings.__dict__, "blob_target": "blob-0.example:1,blob-1.example:1"})
    with pytest.raises(TransportSettingsError, match=r"blob_target \(FRAMEVAULT_BLOB_TARGET\): .*IP address"):
        service_channel(bad.blob_target, bad, [BLOB_SERVICE])
