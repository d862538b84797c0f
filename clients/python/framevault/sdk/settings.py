"""Client settings: where the services are and how the SDK talks to them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

METADATA_TARGET_ENV = "FRAMEVAULT_METADATA_TARGET"
BLOB_TARGET_ENV = "FRAMEVAULT_BLOB_TARGET"


@dataclass(frozen=True)
class ClientSettings:
    """Everything the SDK needs to reach and use the services.

    Only the two addresses come from the environment
    (``FRAMEVAULT_METADATA_TARGET``, ``FRAMEVAULT_BLOB_TARGET``, the same
    variables the services use to reach each other); the rest are tuning
    knobs with defaults that suit the services' own limits.
    """

    metadata_target: str = "127.0.0.1:50051"
    blob_target: str = "127.0.0.1:50052"

    # Deadline of every unary call.
    call_timeout_seconds: float = 30.0
    # Attempts of an idempotent unary call that failed with UNAVAILABLE.
    unary_attempts: int = 5
    retry_initial_backoff_seconds: float = 0.1
    retry_max_backoff_seconds: float = 5.0
    # Reopenings of a broken upload or iteration stream before giving up.
    stream_reconnect_attempts: int = 5

    max_message_bytes: int = 64 * 1024 * 1024
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000

    # Upload stream: frames sent but not yet answered are capped by the
    # smaller of this and the server's advertised window.
    upload_window_frames: int = 1024
    upload_frames_per_message: int = 256
    # A message is closed early once its frames reach this size.
    upload_message_bytes: int = 4 * 1024 * 1024
    # Frames read from the caller's iterable and prepared (blobs uploaded) at once.
    upload_prepare_batch_frames: int = 256

    # Blobs up to this size go through BatchUpdateBlobs, larger ones through
    # the chunked, resumable WriteBlob stream.
    blob_batch_threshold_bytes: int = 1024 * 1024
    blob_upload_concurrency: int = 4

    # Frames per IterateFrames message (0 = server default).
    iterate_frames_per_message: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientSettings:
        """Defaults, then the environment, then ``overrides`` (``None`` values are ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get(METADATA_TARGET_ENV):
            values["metadata_target"] = env[METADATA_TARGET_ENV]
        if env.get(BLOB_TARGET_ENV):
            values["blob_target"] = env[BLOB_TARGET_ENV]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> ClientSettings:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
