"""A local certificate authority for ``make run`` and the tests, under ``<stack dir>/tls/``.

``ensure_local_pki`` creates, and on later calls reuses, one CA, one server
certificate both services present (valid for ``localhost``, ``127.0.0.1`` and
``::1``), and client certificates: one per service, presented when it calls
the other service (the metadata service calls the blob service; the blob
service calls the metadata service for garbage collection), and one for the
CLI, SDK and test clients. A file that is missing, unreadable, expired or about
to expire, or that no longer matches its key or the CA, is issued again; a new
CA re-issues every certificate. Keys are ECDSA P-256, PEM, mode 0600.

The file paths reach the services and clients as the settings named in the
security plan: ``LocalPki.service_env(name)`` for a service,
``LocalPki.client_env()`` for a client.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .supervision import file_lock

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
# A certificate with less left than this is issued again, so a running stack never crosses an expiry.
RENEW_BEFORE = datetime.timedelta(days=30)
# Issued certificates start this far in the past, so a peer whose clock runs slightly behind accepts them.
BACKDATE = datetime.timedelta(minutes=5)

SERVER_DNS_NAMES = ("localhost",)
SERVER_IP_ADDRESSES = ("127.0.0.1", "::1")
# Who calls whom: each service's identity when it calls the other, and the clients' (CLI, SDK, tests).
SERVICE_NAMES = ("metadata", "blob")
CLIENT_NAME = "client"
ORGANIZATION = "framevault local stack"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class LocalPki:
    """The files of the local CA and the certificates it issued."""

    directory: Path
    ca: KeyPair
    server: KeyPair
    # The certificate each service presents when it calls the other (SERVICE_NAMES).
    service_clients: dict[str, KeyPair]
    # The certificate of the CLI, SDK and test clients.
    client: KeyPair

    @property
    def ca_file(self) -> Path:
        return self.ca.cert_file

    def service_env(self, service: str) -> dict[str, str]:
        """The TLS settings of one service: its server certificate, mutual TLS against the local CA,
        the CA it trusts when it calls the other service and the certificate it presents then."""
        identity = self.service_clients[service]
        return {
            "FRAMEVAULT_TLS_CERT_FILE": str(self.server.cert_file),
            "FRAMEVAULT_TLS_KEY_FILE": str(self.server.key_file),
            "FRAMEVAULT_TLS_CLIENT_CA_FILE": str(self.ca_file),
            "FRAMEVAULT_TLS_CA_FILE": str(self.ca_file),
            "FRAMEVAULT_TLS_CLIENT_CERT_FILE": str(identity.cert_file),
            "FRAMEVAULT_TLS_CLIENT_KEY_FILE": str(identity.key_file),
        }

    def client_env(self) -> dict[str, str]:
        """The TLS settings of a client (CLI, SDK, tests): the CA it trusts and the certificate it presents."""
        return {
            "FRAMEVAULT_CA_FILE": str(self.ca_file),
            "FRAMEVAULT_CLIENT_CERT_FILE": str(self.client.cert_file),
            "FRAMEVAULT_CLIENT_KEY_FILE": str(self.client.key_file),
        }


def local_pki_files(directory: Path) -> LocalPki:
    """Where the files of a local PKI in ``directory`` live (whether or not they exist yet)."""

    def pair(name: str) -> KeyPair:
        return KeyPair(directory / f"{name}.pem", directory / f"{name}.key")

    return LocalPki(
        directory=directory,
        ca=pair("ca"),
        server=pair("server"),
        service_clients={name: pair(f"{name}-client") for name in SERVICE_NAMES},
        client=pair(CLIENT_NAME),
    )


def ensure_local_pki(directory: Path) -> LocalPki:
    """Creates what is missing or no longer valid of the local PKI in ``directory``; reuses the rest.

    Safe to call from several processes at once (a file lock serialises them).
    """
    pki = local_pki_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    with file_lock(directory / ".lock"):
        now = datetime.datetime.now(datetime.UTC)
        ca_cert, ca_key = _ensure_ca(pki.ca, now)
        server_names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_DNS_NAMES]
        server_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_IP_ADDRESSES]
        _ensure_leaf(pki.server, "framevault-server", server_names, ExtendedKeyUsageOID.SERVER_AUTH,
                     ca_cert, ca_key, now)
        for service, identity in pki.service_clients.items():
            _ensure_leaf(identity, f"framevault-{service}", [x509.DNSName(f"framevault-{service}")],
                         ExtendedKeyUsageOID.CLIENT_AUTH, ca_cert, ca_key, now)
        _ensure_leaf(pki.client, "framevault-client", [x509.DNSName("framevault-client")],
                     ExtendedKeyUsageOID.CLIENT_AUTH, ca_cert, ca_key, now)
    return pki


def _ensure_ca(files: KeyPair, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    loaded = _load(files)
    if loaded is not None:
        cert, key = loaded
        if _usable(cert, now) and _self_signed(cert):
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, "framevault local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files, cert, key)
    return cert, key


def _ensure_leaf(files: KeyPair, common_name: str, names: Sequence[x509.GeneralName], usage: x509.ObjectIdentifier,
                 ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> None:
    loaded = _load(files)
    if loaded is not None:
        cert, _ = loaded
        if _usable(cert, now) and _issued_by(cert, ca_cert) and _names(cert) == set(names):
            return
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                                 x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(files, cert, key)


def _load(files: KeyPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The certificate and key of ``files`` if both exist, parse, and belong together."""
    try:
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _public_bytes(key.public_key()) != _public_bytes(
            cert.public_key()):
        return None
    return cert, key


def _public_bytes(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return b""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _usable(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def _write(files: KeyPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    """Key first, then certificate, each replaced atomically, so neither is ever seen half-written."""
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _replace(files.key_file, key_pem, 0o600)
    _replace(files.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _replace(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
