"""The local stack's pytest fixtures (entry point ``pytest11``, so every pytest run in the dev venv has them).

* ``stack_env``: the backend settings of the local stack, started first if it is not running
* ``stack_pki``: the local CA and certificates (``<stack dir>/tls/``); nothing uses them unless asked to
* ``settings``: the services' settings for this session: the stack's backends, a database and a bucket
  of the session's own (removed at the end), free ports, console logs, mutual TLS with the local CA
  (``pki.service_env``: plaintext not allowed), security on with the stack's private secrets, a
  bootstrap admin key file of the session's own, and ``metadata_target`` a port kept for the
  session's metadata service (so every blob service of the session authenticates callers there)
* ``client_tls``: how test clients reach those services (``pki.client_env``: the CA, the client certificate)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from framevault.common.config import Settings

from .local import Stack, start_stack
from .pki import LocalPki
from .session_data import make_bucket, remove_stale_test_data, remove_test_data
from .supervision import free_port


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return start_stack()


@pytest.fixture(scope="session")
def stack_pki() -> LocalPki:
    return Stack().pki()


@pytest.fixture(scope="session")
def client_tls(stack_pki: LocalPki) -> dict[str, str]:
    """The client TLS settings (``FRAMEVAULT_CA_FILE`` ...) of the services ``settings`` describes."""
    return stack_pki.client_env()


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str], stack_pki: LocalPki,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    run_id = uuid.uuid4().hex[:10]
    # Both services present the metadata service's client certificate when they call each other.
    environ = {**os.environ, **stack_env, **stack_pki.service_env("metadata"), "FRAMEVAULT_ALLOW_PLAINTEXT": "false"}
    bucket = f"fvtest-{run_id}"
    # Each bucket holds volumes of the local S3 server; those of killed sessions would exhaust it.
    remove_stale_test_data()
    make_bucket(bucket)
    session_settings = Settings.from_env(
        environ,
        mongodb_database=f"fvtest_{run_id}",
        s3_bucket=bucket,
        metadata_address="127.0.0.1:0",
        blob_address="127.0.0.1:0",
        metadata_metrics_address="127.0.0.1:0",
        blob_metrics_address="127.0.0.1:0",
        log_format="console",
        log_level=os.environ.get("FRAMEVAULT_TEST_LOG_LEVEL", "WARNING"),
        security_mode="on",
        bootstrap_admin_key_file=str(tmp_path_factory.mktemp("admin") / "admin.key"),
        metadata_target=f"127.0.0.1:{free_port()}",
    )
    yield session_settings
    remove_test_data(database=session_settings.mongodb_database, bucket=bucket)
