"""The local stack's own secrets: made once per stack folder, private, handed to the services; a
SeaweedFS that still runs with the S3 credentials every stack shared before takes the stack's own
without a restart."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from framevault.stack.local import Stack
from framevault.stack.secrets import (
    LEGACY_S3_ACCESS_KEY,
    LEGACY_S3_SECRET_KEY,
    SECRET_SETTINGS,
    SECRETS_FILE,
    ensure_stack_secrets,
)
from framevault.stack.settings import StackConfig
from framevault.stack.supervision import free_port


def test_secrets_are_made_once_private_and_completed(tmp_path: Path) -> None:
    made = ensure_stack_secrets(tmp_path)
    path = tmp_path / SECRETS_FILE
    assert set(made) == set(SECRET_SETTINGS) and all(made.values())
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_stack_secrets(tmp_path) == made
    # A file of an older stack without a value: that one is added, the others kept.
    older = {name: value for name, value in made.items() if name != "gateway_session_secret"}
    path.write_text(json.dumps(older))
    completed = ensure_stack_secrets(tmp_path)
    assert {name: completed[name] for name in older} == older and completed["gateway_session_secret"]
    assert path.stat().st_mode & 0o777 == 0o600
    # Another stack folder gets values of its own.
    assert ensure_stack_secrets(tmp_path / "other").keys() == made.keys()
    assert ensure_stack_secrets(tmp_path / "other")["s3_secret_key"] != made["s3_secret_key"]


def test_the_stack_hands_its_secrets_to_the_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEVAULT_STACK_DIR", str(tmp_path))
    for name in ("FRAMEVAULT_STACK_S3_ACCESS_KEY", "FRAMEVAULT_STACK_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    own = ensure_stack_secrets(tmp_path)
    env = Stack().env()
    assert env["FRAMEVAULT_S3_ACCESS_KEY"] == own["s3_access_key"]
    assert env["FRAMEVAULT_S3_SECRET_KEY"] == own["s3_secret_key"]
    for name in ("view_cursor_secret", "api_key_pepper", "service_token_secret", "gateway_session_secret"):
        assert env[f"FRAMEVAULT_{name.upper()}"] == own[name]
    # The overrides CI uses for a second stack still win.
    monkeypatch.setenv("FRAMEVAULT_STACK_S3_SECRET_KEY", "ci-chosen-secret")
    assert Stack().env()["FRAMEVAULT_S3_SECRET_KEY"] == "ci-chosen-secret"


def _bindable(port: int) -> bool:
    """Whether a server could listen on ``port`` now: nothing listens there and no connection holds it as its
    local port (a connect probe sees only the first; SeaweedFS then fails to bind its gRPC twin)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_weed_ports() -> dict[str, int]:
    """Four free ports whose gRPC twins (port + offset) are free too."""
    while True:
        ports = {name: free_port() for name in ("s3_port", "weed_master_port", "weed_volume_port", "weed_filer_port")}
        offset = random.randint(1000, 5000)
        if len(set(ports.values())) == 4 and all(p + offset < 65536 and _bindable(p + offset)
                                                 for p in ports.values()):
            return {**ports, "weed_grpc_offset": offset}


def _can_list(endpoint: str, access_key: str, secret_key: str) -> bool:
    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False, region="us-east-1")
    try:
        client.list_buckets()
    except S3Error as exc:
        assert exc.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"), exc
        return False
    return True


@pytest.fixture
def legacy_stack(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """A stack folder whose SeaweedFS was started with the S3 credentials every stack used to share."""
    ports = _free_weed_ports()
    old = Stack(StackConfig(dir=tmp_path, s3_access_key=LEGACY_S3_ACCESS_KEY, s3_secret_key=LEGACY_S3_SECRET_KEY,
                            **ports))
    old.up(mongo=False, s3=True)
    try:
        yield tmp_path, ports
    finally:
        old.s3.stop()


def test_a_running_seaweedfs_with_the_former_public_credentials_takes_the_stacks_own(
        legacy_stack: tuple[Path, dict[str, int]]) -> None:
    directory, ports = legacy_stack
    own = ensure_stack_secrets(directory)
    stack = Stack(StackConfig(dir=directory, s3_access_key=own["s3_access_key"], s3_secret_key=own["s3_secret_key"],
                              **ports))
    # While it runs, what it runs with wins: the former credentials, until `up` replaces them.
    assert stack.s3.secret_key == LEGACY_S3_SECRET_KEY
    stack.up(mongo=False, s3=True)
    endpoint = stack.s3.endpoint
    assert json.loads((directory / "state.json").read_text())["s3"]["secret_key"] == own["s3_secret_key"]
    assert Stack(StackConfig(dir=directory, s3_access_key="x", s3_secret_key="y", **ports)).env()[
        "FRAMEVAULT_S3_SECRET_KEY"] == own["s3_secret_key"]
    assert _can_list(endpoint, own["s3_access_key"], own["s3_secret_key"])
    # Clients that still hold the former credentials (a test session in flight) are not cut off...
    assert _can_list(endpoint, LEGACY_S3_ACCESS_KEY, LEGACY_S3_SECRET_KEY)
    # ...until SeaweedFS restarts: then only the stack's own work.
    stack.s3.stop()
    stack.up(mongo=False, s3=True)
    assert _can_list(endpoint, own["s3_access_key"], own["s3_secret_key"])
    assert not _can_list(endpoint, LEGACY_S3_ACCESS_KEY, LEGACY_S3_SECRET_KEY)
    assert not _can_list(endpoint, own["s3_access_key"], "a guess")
