"""Where the local stack keeps its state, and its ports and credentials (defaults, FRAMEVAULT_STACK_* overrides)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .secrets import ensure_stack_secrets
from .supervision import LOOPBACK, StackError

__all__ = ["LOOPBACK", "REPO_ROOT", "StackConfig", "cache_dir", "stack_dir"]

REPLICA_SET_NAME = "fv"

DEFAULT_MONGO_PORT = 27117
DEFAULT_MONGO_NODES = 1
DEFAULT_S3_PORT = 8333
DEFAULT_WEED_MASTER_PORT = 9334
DEFAULT_WEED_VOLUME_PORT = 8081
DEFAULT_WEED_FILER_PORT = 8889
DEFAULT_WEED_GRPC_OFFSET = 10000  # SeaweedFS convention: grpc port = http port + 10000
DEFAULT_S3_BUCKET = "framevault"
DEFAULT_TIMEOUT = 120.0  # seconds, per readiness wait

# The checkout this package is installed from (editable, by `make install`):
# deploy/local/framevault/stack/settings.py -> the repository root.
REPO_ROOT = Path(__file__).resolve().parents[4]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise StackError(f"{name}={raw!r} is not an integer") from exc


def _env_str(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip()
    return raw or default


def stack_dir() -> Path:
    """Root of the runtime state (data, logs, pid files, certificates): $FRAMEVAULT_STACK_DIR or <repo>/.stack."""
    raw = os.environ.get("FRAMEVAULT_STACK_DIR", "").strip()
    return Path(raw).expanduser().resolve() if raw else REPO_ROOT / ".stack"


def cache_dir() -> Path:
    """${FRAMEVAULT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/framevault}: the built server binaries."""
    raw = os.environ.get("FRAMEVAULT_CACHE_DIR", "").strip()
    if raw:
        return Path(raw).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "framevault").resolve()


@dataclasses.dataclass
class StackConfig:
    """Settings of the default stack, read from FRAMEVAULT_STACK_* env vars; the S3 credentials
    default to the stack's own secrets (``<stack>/secrets.json``)."""

    dir: Path
    s3_access_key: str
    s3_secret_key: str
    mongo_port: int = DEFAULT_MONGO_PORT
    mongo_nodes: int = DEFAULT_MONGO_NODES
    s3_port: int = DEFAULT_S3_PORT
    weed_master_port: int = DEFAULT_WEED_MASTER_PORT
    weed_volume_port: int = DEFAULT_WEED_VOLUME_PORT
    weed_filer_port: int = DEFAULT_WEED_FILER_PORT
    weed_grpc_offset: int = DEFAULT_WEED_GRPC_OFFSET
    s3_bucket: str = DEFAULT_S3_BUCKET
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls) -> StackConfig:
        directory = stack_dir()
        own = ensure_stack_secrets(directory)
        return cls(
            dir=directory,
            mongo_port=_env_int("FRAMEVAULT_STACK_MONGO_PORT", DEFAULT_MONGO_PORT),
            mongo_nodes=_env_int("FRAMEVAULT_STACK_MONGO_NODES", DEFAULT_MONGO_NODES),
            s3_port=_env_int("FRAMEVAULT_STACK_S3_PORT", DEFAULT_S3_PORT),
            weed_master_port=_env_int("FRAMEVAULT_STACK_WEED_MASTER_PORT", DEFAULT_WEED_MASTER_PORT),
            weed_volume_port=_env_int("FRAMEVAULT_STACK_WEED_VOLUME_PORT", DEFAULT_WEED_VOLUME_PORT),
            weed_filer_port=_env_int("FRAMEVAULT_STACK_WEED_FILER_PORT", DEFAULT_WEED_FILER_PORT),
            weed_grpc_offset=_env_int("FRAMEVAULT_STACK_WEED_GRPC_OFFSET", DEFAULT_WEED_GRPC_OFFSET),
            s3_access_key=_env_str("FRAMEVAULT_STACK_S3_ACCESS_KEY", own["s3_access_key"]),
            s3_secret_key=_env_str("FRAMEVAULT_STACK_S3_SECRET_KEY", own["s3_secret_key"]),
            s3_bucket=_env_str("FRAMEVAULT_STACK_S3_BUCKET", DEFAULT_S3_BUCKET),
            timeout=float(_env_int("FRAMEVAULT_STACK_TIMEOUT", int(DEFAULT_TIMEOUT))),
        )
