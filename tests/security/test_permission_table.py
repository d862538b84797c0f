"""The one permission table covers every RPC of both services, and nothing else."""

from __future__ import annotations

from framevault.auth import permissions as perm
from framevault.v1 import access_pb2, blob_pb2, metadata_service_pb2


def _methods(descriptor: object) -> set[str]:
    return {f"/{descriptor.full_name}/{method.name}" for method in descriptor.methods}  # type: ignore[attr-defined]


def test_every_method_of_every_service_has_a_rule() -> None:
    described = (
        _methods(metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"])
        | _methods(access_pb2.DESCRIPTOR.services_by_name["AccessService"])
        | _methods(blob_pb2.DESCRIPTOR.services_by_name["BlobService"])
    )
    assert set(perm.RULES) == described


def test_dataset_rules_name_a_role_and_others_none() -> None:
    for method, rule in perm.RULES.items():
        scoped = rule.permission.scope in (perm.Scope.DATASET, perm.Scope.ANY_DATASET)
        assert (rule.permission.role in perm.DATASET_ROLES) == scoped, method


def test_health_and_reflection_are_open_and_nothing_else() -> None:
    assert perm.is_open("/grpc.health.v1.Health/Check")
    assert perm.is_open("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    assert perm.is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not any(perm.is_open(method) for method in perm.RULES)
    assert not perm.is_open("/grpc.health.v1.HealthX/Check")
