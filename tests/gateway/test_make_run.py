"""``make run`` (``framevault-stack run --secure``) starts the gateway too, and prints the web app's address.

The launcher runs as its own process with this session's stack, a database and bucket of its own,
free ports, and a web app folder made here, exactly as the Makefile starts it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from e2e.conftest import launched
from e2e.launch import World, caller_environment

from framevault.stack.session_data import make_bucket, remove_test_data

INDEX_HTML = b"<!doctype html><title>framevault</title><script type=module src=/assets/app-1234.js></script>"


@dataclass(frozen=True)
class LaunchedWebApp:
    url: str
    admin_key: str


def _wait_for_line(path: Path, prefix: str) -> str:
    """The line after the launcher's banner (it prints the web app's address right after)."""
    deadline = time.monotonic() + 30
    while True:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if time.monotonic() > deadline:
            pytest.fail(f"no {prefix!r} line; output:\n{path.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def web_app(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedWebApp]:
    directory = tmp_path_factory.mktemp("make-run-web")
    static = directory / "dist"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_bytes(INDEX_HTML)
    (static / "assets" / "app-1234.js").write_text("console.log('framevault')\n")
    (directory / "outside.txt").write_text("not served")
    run_id = uuid.uuid4().hex[:10]
    world = World(database=f"fvweb_{run_id}", bucket=f"fvweb-{run_id}", admin_key_file=directory / "admin.key")
    make_bucket(world.bucket)
    env = {
        **{key: value for key, value in caller_environment().items() if key != "FRAMEVAULT_CONFIG"},
        **world.service_overrides(),
        "XDG_CONFIG_HOME": str(directory / "config-home"),
        "FRAMEVAULT_GATEWAY_STATIC_DIR": str(static),
    }
    logs = directory / "logs"
    logs.mkdir()
    try:
        with launched(logs, env, "--secure"):
            line = _wait_for_line(logs / "stdout.txt", "web app:")
            yield LaunchedWebApp(line.removeprefix("web app:").strip(), world.token)
    finally:
        remove_test_data(database=world.database, bucket=world.bucket)


def test_make_run_prints_the_web_app_address_and_serves_it(web_app: LaunchedWebApp) -> None:
    assert web_app.url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=web_app.url, timeout=30) as client:
        health = client.get("/api/healthz")
        assert health.status_code == 200, health.text
        assert health.json() == {"serving": True, "services": {"metadata": "SERVING", "blob": "SERVING"}}

        page = client.get("/")
        deep_link = client.get("/datasets/0123/versions/4567")
        assert page.content == deep_link.content == INDEX_HTML
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        script = client.get("/assets/app-1234.js")
        assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
        # Nothing outside the web app's folder is served, whatever the path says.
        assert client.get("/%2e%2e/outside.txt").content == INDEX_HTML


def test_make_run_gateway_signs_in_with_the_admin_key_over_mutual_tls(web_app: LaunchedWebApp) -> None:
    with httpx.Client(base_url=web_app.url, timeout=30) as client:
        assert client.get("/api/datasets").status_code == 401
        signed_in = client.post("/api/session", json={"token": web_app.admin_key})
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["caller"]["admin"] is True
        # The services require client certificates: the list answers only if the gateway presents one.
        listed = client.get("/api/datasets")
        assert listed.status_code == 200, listed.text
        assert listed.json()["datasets"] == []
