"""End-to-end tests of the generated Go, TypeScript and Java clients.

Each test builds one client with its own toolchain and runs its end-to-end
test (clients/<language>/) against the services as ``make run`` starts them,
over mutual TLS with the local CA and with security_mode on:
FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET name them,
FRAMEVAULT_CA_FILE, FRAMEVAULT_CLIENT_CERT_FILE and FRAMEVAULT_CLIENT_KEY_FILE
secure the channels, and every call carries FRAMEVAULT_TOKEN (an admin API
key) as its bearer token, which both services check.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

import pytest

from .launch import SecureEndpoints
from .prebuild import (
    BUILD_TIMEOUT_SECONDS,
    GO_CLIENT,
    JAVA_CLIENT,
    PREBUILDS,
    TYPESCRIPT_CLIENT,
    build_go_client,
    build_java_client,
    build_typescript_client,
    maven_offline,
    maven_resolved_stamp,
)

# Each client's build (tests/e2e/prebuild.py) runs in the background from the start of the session;
# its test waits for it, then runs the client's end-to-end test against the services.
BACKGROUND_BUILDS = {"go client": build_go_client, "typescript client": build_typescript_client,
                     "java client": build_java_client}


def built(name: str) -> str:
    return PREBUILDS.result(name, BACKGROUND_BUILDS[name])


def run_tool(command: Sequence[str], cwd: Path, env: dict[str, str]) -> str:
    """Runs a command to completion and returns its output; fails the test on a non-zero exit."""
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is not installed: the {cwd.name} client cannot be built")
    try:
        done = subprocess.run(list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} in {cwd} ran longer than {BUILD_TIMEOUT_SECONDS} s")
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} in {cwd} exited with {done.returncode}:\n{output}")
    return output


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_go_client_end_to_end(authenticated_make_run: SecureEndpoints) -> None:
    built("go client")
    env = authenticated_make_run.client_env()
    output = run_tool(["go", "test", "-count=1", "-v", "./..."], GO_CLIENT, env)
    assert "--- PASS: TestEndToEnd" in output, output


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_typescript_client_end_to_end(authenticated_make_run: SecureEndpoints) -> None:
    built("typescript client")
    env = authenticated_make_run.client_env()
    output = run_tool(["npm", "test"], TYPESCRIPT_CLIENT, env)
    assert "# pass 1" in output and "# skipped 0" in output, output


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_java_client_end_to_end(authenticated_make_run: SecureEndpoints) -> None:
    built("java client")
    env = authenticated_make_run.client_env()
    run_tool(["mvn", "-q", "-B", *maven_offline(), "test"], JAVA_CLIENT, env)
    maven_resolved_stamp().touch()

    report = JAVA_CLIENT / "target" / "surefire-reports" / "TEST-dev.framevault.e2e.EndToEndTest.xml"
    suite = ElementTree.parse(report).getroot()
    assert (suite.get("tests"), suite.get("skipped"), suite.get("failures"), suite.get("errors")) == (
        "1", "0", "0", "0"), ElementTree.tostring(suite, encoding="unicode")[:4000]
