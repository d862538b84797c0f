"""Server reflection of the running services, as ``grpcurl list`` / ``grpcurl describe`` use it.

grpcurl and current gRPC libraries ask ``grpc.reflection.v1`` first; older
clients ask ``grpc.reflection.v1alpha``. Both must list the services and
serve their descriptors.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2

from framevault.v1.grpc.reflection.v1 import reflection_pb2 as reflection_v1_pb2

from .launch import Endpoints, channel

VERSIONS = {"v1": reflection_v1_pb2, "v1alpha": reflection_v1alpha_pb2}
COMMON = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}


def ask(address: str, messages: ModuleType, **request: Any) -> Any:
    """One reflection request over the ``messages`` module's package, as a reflection client sends it."""
    package = messages.DESCRIPTOR.package
    call = channel(address).stream_stream(
        f"/{package}.ServerReflection/ServerReflectionInfo",
        request_serializer=messages.ServerReflectionRequest.SerializeToString,
        response_deserializer=messages.ServerReflectionResponse.FromString)
    (response,) = list(call(iter([messages.ServerReflectionRequest(**request)]), timeout=30))
    return response


def services_in(response: Any) -> set[str]:
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in response.file_descriptor_response.file_descriptor_proto]
    return {f"{f.package}.{s.name}" for f in files for s in f.service}


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_reflection_lists_and_describes_every_service(make_run: Endpoints, version: str) -> None:
    messages = VERSIONS[version]
    # The metadata service also serves the access service (API keys, roles), on by default.
    for address, own in ((make_run.metadata_address, {"framevault.v1.MetadataService", "framevault.v1.AccessService"}),
                         (make_run.blob_address, {"framevault.v1.BlobService"})):
        listed = ask(address, messages, list_services="")
        assert {s.name for s in listed.list_services_response.service} == {*own, *COMMON}
        for service in (*own, "grpc.reflection.v1.ServerReflection"):
            described = ask(address, messages, file_containing_symbol=service)
            assert described.WhichOneof("message_response") == "file_descriptor_response", described
            assert service in services_in(described)
