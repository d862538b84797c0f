"""Both services over TLS and mutual TLS: the SDK and plain gRPC clients, the metadata service's calls to the
blob service, and clients whose transport does not match the server's."""

# ruff: noqa: F811 - the fixtures of tls_services are imported by name, and tests take them as parameters

from __future__ import annotations

import dataclasses
import uuid

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from framevault.api.digests import digest_of, digest_to_proto
from framevault.common.config import Settings
from framevault.common.errors import Unavailable
from framevault.metadata.blob_gateway import GrpcBlobGateway
from framevault.sdk import FramevaultError
from framevault.sdk.client import FramevaultClient
from framevault.stack.pki import LocalPki
from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .tls_services import (  # noqa: F401 - fixtures
    TlsServices,
    mutual_tls_services,
    stranger_pki,
    tls_pki,
    tls_service_settings,
    tls_services,
)

# A deadline far longer than any refusal takes: a refused call must end with UNAVAILABLE, not run into it.
LONG_DEADLINE_SECONDS = 120.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_dataset(client: FramevaultClient, name: str) -> dataset_pb2.Dataset:
    request = ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name))
    created: dataset_pb2.Dataset = await client.unary(client.metadata.CreateDataset, request, idempotent=False)
    return created


async def test_sdk_checks_the_server_certificate_against_its_ca(tls_services: TlsServices) -> None:
    async with FramevaultClient(tls_services.client_settings(certificate=False)) as client:
        name = unique("tls-sdk")
        created = await create_dataset(client, name)
        listed = await client.unary(client.metadata.ListDatasets, ms.ListDatasetsRequest(name_prefix=name),
                                    idempotent=True)
        assert [d.id for d in listed.datasets] == [created.id]
        assert (await client.capabilities()).max_batch_blobs > 0


async def test_sdk_refuses_a_server_certificate_from_another_ca(tls_services: TlsServices,
                                                                stranger_pki: LocalPki) -> None:
    settings = tls_services.client_settings(certificate=False, ca_file=str(stranger_pki.ca_file))
    async with FramevaultClient(settings) as client:
        with pytest.raises(FramevaultError) as refused:
            await client.unary(client.metadata.ListDatasets, ms.ListDatasetsRequest(), idempotent=True)
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.message


async def test_mutual_tls_accepts_a_client_certificate_of_its_ca(mutual_tls_services: TlsServices) -> None:
    async with FramevaultClient(mutual_tls_services.client_settings()) as client:
        created = await create_dataset(client, unique("mtls-sdk"))
        assert created.id
        assert (await client.capabilities()).max_batch_blobs > 0
    async with mutual_tls_services.raw_channel(mutual_tls_services.blob_target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_mutual_tls_refuses_a_client_without_certificate(mutual_tls_services: TlsServices) -> None:
    for target in (mutual_tls_services.metadata_target, mutual_tls_services.blob_target):
        async with mutual_tls_services.raw_channel(target, certificate=False) as channel:
            with pytest.raises(aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                timeout=LONG_DEADLINE_SECONDS)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    settings = mutual_tls_services.client_settings(certificate=False, unary_attempts=5)
    async with FramevaultClient(settings) as client:
        with pytest.raises(FramevaultError) as sdk_refused:
            await client.unary(client.metadata.ListDatasets, ms.ListDatasetsRequest(), idempotent=True)
    assert sdk_refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert "requires a client certificate (mutual TLS)" in sdk_refused.value.message
    assert "FRAMEVAULT_CLIENT_CERT_FILE" in sdk_refused.value.message


async def test_a_client_certificate_of_another_ca_is_refused(mutual_tls_services: TlsServices,
                                                            stranger_pki: LocalPki) -> None:
    settings = dataclasses.replace(mutual_tls_services.client_settings(),
                                   client_cert_file=str(stranger_pki.client.cert_file),
                                   client_key_file=str(stranger_pki.client.key_file))
    async with FramevaultClient(settings) as client:
        with pytest.raises(FramevaultError) as refused:
            await client.unary(client.metadata.ListDatasets, ms.ListDatasetsRequest(), idempotent=True)
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE


async def test_upload_with_inline_bytes_crosses_both_services_over_mutual_tls(
        mutual_tls_services: TlsServices) -> None:
    content = unique("inline over mutual TLS").encode()
    async with FramevaultClient(mutual_tls_services.client_settings()) as client:
        dataset = await create_dataset(client, unique("mtls-upload"))
        draft = await client.unary(client.metadata.GetVersion, ms.GetVersionRequest(version=dataset_pb2.VersionRef(
            dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")), idempotent=True)
        call = client.metadata.UploadFrames()
        await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(
            version=dataset_pb2.VersionRef(id=draft.id), upload_retries=0)))
        await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(client_key="k0", frame=frame_pb2.Frame(
            id="inline-0", sources=[frame_pb2.Source(inline_content=content)]))]))
        await call.done_writing()
        responses = [response async for response in call]
        results = [result for r in responses if r.HasField("results") for result in r.results.results]
        summaries = [r.summary for r in responses if r.HasField("summary")]
        assert [(r.client_key, r.outcome) for r in results] == [("k0", ms.FrameResult.OUTCOME_CREATED)]
        assert [(s.created, s.failed) for s in summaries] == [(1, 0)]

        # The metadata service stored the bytes in the blob service: they read back by their digest.
        digest = digest_of(content)
        read = await client.unary(client.blob.BatchReadBlobs, blob_pb2.BatchReadBlobsRequest(
            digests=[digest_to_proto(digest)]), idempotent=True)
        assert [r.data for r in read.responses] == [content]


async def test_the_metadata_service_without_its_certificate_is_refused_by_the_blob_service(
        settings: Settings, mutual_tls_services: TlsServices) -> None:
    without_certificate = dataclasses.replace(
        tls_service_settings(settings, mutual_tls_services.pki, "metadata", mutual=True),
        tls_client_cert_file="", tls_client_key_file="")
    gateway = GrpcBlobGateway(mutual_tls_services.blob_target, without_certificate)
    try:
        with pytest.raises(Unavailable):
            await gateway.capabilities()
    finally:
        await gateway.close()

    with_certificate = GrpcBlobGateway(
        mutual_tls_services.blob_target,
        tls_service_settings(settings, mutual_tls_services.pki, "metadata", mutual=True))
    try:
        assert (await with_certificate.capabilities()).max_batch_blobs > 0
    finally:
        await with_certificate.close()


async def test_plaintext_grpc_client_on_a_tls_port_fails_at_once(tls_services: TlsServices) -> None:
    for target in (tls_services.metadata_target, tls_services.blob_target):
        async with aio.insecure_channel(target) as channel:
            with pytest.raises(aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                timeout=LONG_DEADLINE_SECONDS)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("service", ["metadata", "blob"])
async def test_plaintext_sdk_on_a_tls_port_says_tls_is_required(tls_services: TlsServices, service: str) -> None:
    settings = tls_services.client_settings(certificate=False, ca_file="", plaintext=True, unary_attempts=5)
    async with FramevaultClient(settings) as client:
        call, request = ((client.metadata.ListDatasets, ms.ListDatasetsRequest()) if service == "metadata"
                         else (client.blob.GetCapabilities, blob_pb2.GetCapabilitiesRequest()))
        with pytest.raises(FramevaultError) as refused:
            await client.unary(call, request, idempotent=True)
    target = tls_services.metadata_target if service == "metadata" else tls_services.blob_target
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.message.startswith(f"the {service} service at {target} requires TLS, but this client "
                                            "connects in plaintext")
    assert "FRAMEVAULT_CA_FILE" in refused.value.message and "FRAMEVAULT_PLAINTEXT" in refused.value.message


async def test_a_plaintext_service_channel_to_a_tls_blob_service_does_not_store(
        settings: Settings, tls_services: TlsServices) -> None:
    gateway = GrpcBlobGateway(tls_services.blob_target, dataclasses.replace(settings, allow_plaintext=True))
    try:
        with pytest.raises(Unavailable):
            await gateway.store(b"never stored in plaintext")
    finally:
        await gateway.close()
    async with FramevaultClient(tls_services.client_settings(certificate=False)) as client:
        missing = await client.unary(client.blob.FindMissingBlobs, blob_pb2.FindMissingBlobsRequest(
            digests=[digest_to_proto(digest_of(b"never stored in plaintext"))]), idempotent=True)
    assert len(missing.missing_digests) == 1
