"""``make run`` serves mutual TLS, and the README's quickstarts work unchanged against it: the CLI and SDK
find the local CA, their client certificate and the addresses in the client config file ``make run`` wrote,
with no flag and no variable."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .flows import list_frames, python_script, read_blob, readme_block, run, unique, version_ref, write_image
from .launch import SecureEndpoints


def test_make_run_writes_the_client_config_file(secure_make_run: SecureEndpoints) -> None:
    config = tomllib.loads((secure_make_run.config_home / "framevault" / "client.toml").read_text())
    assert config == {
        "metadata_target": secure_make_run.metadata_address,
        "blob_target": secure_make_run.blob_address,
        "ca_file": secure_make_run.client_tls_env["FRAMEVAULT_CA_FILE"],
        "client_cert_file": secure_make_run.client_tls_env["FRAMEVAULT_CLIENT_CERT_FILE"],
        "client_key_file": secure_make_run.client_tls_env["FRAMEVAULT_CLIENT_KEY_FILE"],
        "token_file": str(secure_make_run.admin_key_file.resolve()),
    }
    # make run says where the admin key is.
    assert f"admin API key: {secure_make_run.admin_key_file.resolve()}\n" in secure_make_run.output.read_text()


def test_make_run_refuses_plaintext_and_clients_without_certificate(secure_make_run: SecureEndpoints) -> None:
    ca = Path(secure_make_run.client_tls_env["FRAMEVAULT_CA_FILE"]).read_bytes()
    for address in (secure_make_run.metadata_address, secure_make_run.blob_address):
        for channel in (grpc.insecure_channel(address), grpc.secure_channel(address, grpc.ssl_channel_credentials(ca))):
            with channel, pytest.raises(grpc.RpcError) as refused:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=120)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_readme_python_quickstart_over_mutual_tls(secure_make_run: SecureEndpoints, tmp_path: Path) -> None:
    image = write_image(tmp_path / "images" / "0001.jpg", (1280, 720), 1)
    dataset = unique("tls-py-quickstart")
    code = readme_block("## Quickstart", "python").replace('"drives"', f'"{dataset}"')
    done = python_script(code, secure_make_run.config_file_env(), tmp_path)
    assert "(['car'], [1])" in done.stdout, done.stdout

    (frame,) = list_frames(secure_make_run.metadata_stub(), version_ref(dataset, "v1"))
    assert read_blob(secure_make_run.blob_stub(), frame.sources[0].uri) == image.read_bytes()


def test_cli_without_flags_over_mutual_tls(secure_make_run: SecureEndpoints, tmp_path: Path) -> None:
    env = secure_make_run.config_file_env()
    dataset = unique("tls-cli")
    run(["framevault", "dataset", "create", dataset], env, tmp_path)
    assert dataset in run(["framevault", "dataset", "list", "--prefix", dataset], env, tmp_path).stdout
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"stored over mutual TLS " + dataset.encode())
    uri = run(["framevault", "blob", "put", str(payload)], env, tmp_path).stdout.split()[0]
    assert read_blob(secure_make_run.blob_stub(), uri) == payload.read_bytes()


def test_cli_finds_the_admin_key_through_the_config_file(authenticated_make_run: SecureEndpoints,
                                                         tmp_path: Path) -> None:
    env = authenticated_make_run.config_file_env()
    dataset = unique("tls-auth-cli")
    run(["framevault", "dataset", "create", dataset], env, tmp_path)
    assert dataset in run(["framevault", "dataset", "list", "--prefix", dataset], env, tmp_path).stdout
    anonymous = run(["framevault", "--token-file", "/dev/null", "dataset", "list"], env, tmp_path, check=False)
    assert anonymous.returncode == 1 and anonymous.stderr.startswith("error: UNAUTHENTICATED"), anonymous.stderr
