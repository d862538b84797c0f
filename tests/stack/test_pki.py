"""The local CA of the stack: certificates that verify against it and complete a mutual TLS handshake,
files reused across runs, and expired or missing files issued again."""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from framevault.stack.pki import KeyPair, LocalPki, ensure_local_pki, local_pki_files

SERVER_HOSTNAMES = ("localhost", "127.0.0.1")


def all_pairs(pki: LocalPki) -> list[KeyPair]:
    return [pki.ca, pki.server, *pki.service_clients.values(), pki.client]


def client_pairs(pki: LocalPki) -> list[KeyPair]:
    return [*pki.service_clients.values(), pki.client]


def snapshot(pki: LocalPki) -> dict[Path, bytes]:
    return {path: path.read_bytes() for pair in all_pairs(pki) for path in (pair.cert_file, pair.key_file)}


def certificate(pair: KeyPair) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pair.cert_file.read_bytes())


def assert_issued_by_the_ca(pki: LocalPki) -> None:
    ca = certificate(pki.ca)
    for pair in all_pairs(pki)[1:]:
        certificate(pair).verify_directly_issued_by(ca)


def handshake(pki: LocalPki, client: KeyPair | None, server_hostname: str) -> tuple[str | None, list[Exception]]:
    """A TLS handshake over a socket pair: the server presents the server certificate and requires
    a client certificate issued by the CA. Returns the client certificate's common name as the server
    saw it (None if the handshake failed) and the errors of the server and the client side."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_file))
    server_context.load_cert_chain(str(pki.server.cert_file), str(pki.server.key_file))
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_file))
    if client is not None:
        client_context.load_cert_chain(str(client.cert_file), str(client.key_file))
    server_socket, client_socket = socket.socketpair()
    for sock in (server_socket, client_socket):
        sock.settimeout(30)
    outcome: dict[str, object] = {}

    def serve() -> None:
        try:
            with server_context.wrap_socket(server_socket, server_side=True) as tls:
                outcome["peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            outcome["server error"] = exc

    server = threading.Thread(target=serve)
    server.start()
    try:
        with client_context.wrap_socket(client_socket, server_hostname=server_hostname) as tls:
            # TLS 1.3 reports a refused client certificate on the first read.
            outcome["reply"] = tls.recv(2)
    except (ssl.SSLError, OSError) as exc:
        outcome["client error"] = exc
    finally:
        client_socket.close()
        server.join(30)
    errors = [error for side in ("server error", "client error") if isinstance(error := outcome.get(side), Exception)]
    if errors or outcome.get("reply") != b"ok":
        return None, errors
    subject = dict(item for rdn in outcome["peer"]["subject"] for item in rdn)  # type: ignore[index]
    return str(subject["commonName"]), []


def common_name(pair: KeyPair) -> str:
    return str(certificate(pair).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_every_certificate_verifies_against_the_ca_and_completes_a_mutual_tls_handshake(tmp_path: Path) -> None:
    pki = ensure_local_pki(tmp_path / "tls")
    assert_issued_by_the_ca(pki)
    server = certificate(pki.server)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH])
    for pair in client_pairs(pki):
        usage = certificate(pair).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        for hostname in SERVER_HOSTNAMES:
            assert handshake(pki, pair, hostname) == (common_name(pair), [])
    for pair in all_pairs(pki):
        assert pair.key_file.stat().st_mode & 0o777 == 0o600


def test_a_client_without_a_certificate_or_a_wrong_host_name_is_refused(tmp_path: Path) -> None:
    pki = ensure_local_pki(tmp_path / "tls")
    name, (server_error, *_) = handshake(pki, None, "localhost")
    assert name is None and isinstance(server_error, ssl.SSLError)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(server_error), server_error
    name, errors = handshake(pki, pki.client, "example.com")
    assert name is None
    assert any(isinstance(error, ssl.SSLCertVerificationError) and "example.com" in str(error) for error in errors), errors


def test_a_second_run_reuses_every_file(tmp_path: Path) -> None:
    first = snapshot(ensure_local_pki(tmp_path / "tls"))
    assert snapshot(ensure_local_pki(tmp_path / "tls")) == first


def test_an_expired_certificate_is_issued_again(tmp_path: Path) -> None:
    pki = ensure_local_pki(tmp_path / "tls")
    before = snapshot(pki)
    ca = certificate(pki.ca)
    ca_key = serialization.load_pem_private_key(pki.ca.key_file.read_bytes(), password=None)
    server_key = serialization.load_pem_private_key(pki.server.key_file.read_bytes(), password=None)
    now = datetime.datetime.now(datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(certificate(pki.server).subject)
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(certificate(pki.server).extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
                       critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pki.server.cert_file.write_bytes(expired.public_bytes(serialization.Encoding.PEM))

    ensure_local_pki(tmp_path / "tls")

    renewed = certificate(pki.server)
    assert renewed.not_valid_after_utc > now + datetime.timedelta(days=30)
    renewed.verify_directly_issued_by(ca)
    assert handshake(pki, pki.client, "localhost") == ("framevault-client", [])
    after = snapshot(pki)
    assert {path for path in before if before[path] != after[path]} == {pki.server.cert_file, pki.server.key_file}


def test_missing_files_are_created_again(tmp_path: Path) -> None:
    pki = ensure_local_pki(tmp_path / "tls")
    before = snapshot(pki)
    pki.client.key_file.unlink()

    ensure_local_pki(tmp_path / "tls")

    after = snapshot(pki)
    assert {path for path in before if before[path] != after[path]} == {pki.client.cert_file, pki.client.key_file}
    assert handshake(pki, pki.client, "localhost") == ("framevault-client", [])

    # Without the CA, every certificate is issued again by a new one.
    pki.ca.cert_file.unlink()
    ensure_local_pki(tmp_path / "tls")
    renewed = snapshot(pki)
    assert all(renewed[path] != after[path] for path in after)
    assert_issued_by_the_ca(pki)
    assert handshake(pki, pki.service_clients["metadata"], "127.0.0.1") == ("framevault-metadata", [])


def test_the_stack_env_names_the_local_pki_files(stack_pki: LocalPki) -> None:
    assert stack_pki == local_pki_files(stack_pki.directory)
    assert_issued_by_the_ca(stack_pki)
    expected = {
        "client": {"FRAMEVAULT_CA_FILE": stack_pki.ca.cert_file,
                   "FRAMEVAULT_CLIENT_CERT_FILE": stack_pki.client.cert_file,
                   "FRAMEVAULT_CLIENT_KEY_FILE": stack_pki.client.key_file},
    }
    for service in ("metadata", "blob"):
        expected[service] = {
            "FRAMEVAULT_TLS_CERT_FILE": stack_pki.server.cert_file,
            "FRAMEVAULT_TLS_KEY_FILE": stack_pki.server.key_file,
            "FRAMEVAULT_TLS_CLIENT_CA_FILE": stack_pki.ca.cert_file,
            "FRAMEVAULT_TLS_CA_FILE": stack_pki.ca.cert_file,
            "FRAMEVAULT_TLS_CLIENT_CERT_FILE": stack_pki.service_clients[service].cert_file,
            "FRAMEVAULT_TLS_CLIENT_KEY_FILE": stack_pki.service_clients[service].key_file,
        }
    for consumer, variables in expected.items():
        out = subprocess.run([sys.executable, "-m", "framevault.stack", "env", "--tls", consumer],
                             check=True, capture_output=True, text=True).stdout
        printed = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
        assert {name: Path(printed[name]) for name in variables} == variables
        assert "FRAMEVAULT_MONGODB_URI" in printed
    plain = subprocess.run([sys.executable, "-m", "framevault.stack", "env"],
                           check=True, capture_output=True, text=True).stdout
    assert "FRAMEVAULT_TLS" not in plain and "FRAMEVAULT_CA_FILE" not in plain
