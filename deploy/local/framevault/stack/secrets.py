"""The local stack's private secrets, made once per stack folder (``<stack>/secrets.json``, mode 0600).

The services have no working default for any secret, so the stack makes its own the first time it is
used and hands them out: the S3 identity of SeaweedFS (``s3_access_key``, ``s3_secret_key``) and the
services' signing keys (``framevault-stack env`` / ``run``, the pytest plugin's ``settings``). Each
checkout keeps its values until ``framevault-stack down --purge``; a value missing from an older file
is added, the others are kept.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .supervision import StackError, file_lock

# The settings (framevault.common.config names) the stack makes values for.
SECRET_SETTINGS = ("s3_access_key", "s3_secret_key", "view_cursor_secret", "api_key_pepper",
                   "service_token_secret", "gateway_session_secret")
# The S3 credentials every stack used before it made its own: recognised to replace them (see Stack.up).
LEGACY_S3_ACCESS_KEY = "framevault"
LEGACY_S3_SECRET_KEY = "framevault-secret"

SECRETS_FILE = "secrets.json"


def _new_value(name: str) -> str:
    # S3 access keys are user names of a sort: short, no symbols.
    return f"fv{secrets.token_hex(8)}" if name == "s3_access_key" else secrets.token_urlsafe(32)


def ensure_stack_secrets(directory: Path) -> dict[str, str]:
    """The stack's secrets by setting name, created (or completed) in ``directory`` if needed."""
    path = directory / SECRETS_FILE
    with file_lock(directory / ".secrets.lock"):
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            values = {}
        except (OSError, json.JSONDecodeError) as exc:
            raise StackError(f"{path} is unreadable ({exc}); remove it to have new secrets made") from exc
        missing = [name for name in SECRET_SETTINGS if not values.get(name)]
        if missing:
            values.update({name: _new_value(name) for name in missing})
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                os.fchmod(fd, 0o600)
                file.write(json.dumps(values, indent=2) + "\n")
            os.replace(tmp, path)
    return {name: str(values[name]) for name in SECRET_SETTINGS}
