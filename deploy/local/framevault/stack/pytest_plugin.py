"""The local stack's pytest fixtures (entry point ``pytest11``, so every pytest run in the dev venv has them).

* ``stack_env``: the backend settings of the local stack, started first if it is not running
* ``stack_pki``: the local CA and certificates (``<stack dir>/tls/``); nothing uses them unless asked to
* ``settings``: the services' settings for this session: the stack's backends, a database and a bucket
  of the session's own (removed at the end), free ports, console logs, mutual TLS with the local CA
  (``pki.service_env``: plaintext not allowed) and private secrets generated for the session
* ``client_tls``: how test clients reach those services (``pki.client_env``: the CA, the client certificate)
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator

import pytest

from framevault.common.config import Settings

from .local import Stack, start_stack
from .pki import LocalPki
from .session_data import make_bucket, remove_test_data


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return start_stack()


@pytest.fixture(scope="session")
def stack_pki() -> LocalPki:
    return Stack().pki()


def session_secrets() -> dict[str, str]:
    """Private values of the secrets both services need outside local-dev mode, new for each session."""
    return {name: f"fvtest-{name}-{secrets.token_hex(16)}"
            for name in ("view_cursor_secret", "api_key_pepper", "service_token_secret")}


@pytest.fixture(scope="session")
def client_tls(stack_pki: LocalPki) -> dict[str, str]:
    """The client TLS settings (``FRAMEVAULT_CA_FILE`` ...) of the services ``settings`` describes."""
    return stack_pki.client_env()


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str], stack_pki: LocalPki) -> Iterator[Settings]:
    run_id = uuid.uuid4().hex[:10]
    # Both services present the metadata service's client certificate when they call each other.
    environ = {**os.environ, **stack_env, **stack_pki.service_env("metadata"), "FRAMEVAULT_ALLOW_PLAINTEXT": "false"}
    bucket = f"fvtest-{run_id}"
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
        **session_secrets(),
    )
    yield session_settings
    remove_test_data(database=session_settings.mongodb_database, bucket=bucket)
