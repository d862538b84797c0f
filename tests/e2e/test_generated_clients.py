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

import hashlib
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

import pytest

from .launch import SecureEndpoints

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
GO_CLIENT = CLIENTS / "go"
TYPESCRIPT_CLIENT = CLIENTS / "typescript"
JAVA_CLIENT = CLIENTS / "java"

# A first build downloads the toolchains' dependencies; later builds are quick.
BUILD_TIMEOUT_SECONDS = 900


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
    env = authenticated_make_run.client_env()
    output = run_tool(["go", "test", "-count=1", "-v", "./..."], GO_CLIENT, env)
    assert "--- PASS: TestEndToEnd" in output, output


def node_modules_current() -> bool:
    """npm records the installed tree in node_modules/.package-lock.json."""
    installed = TYPESCRIPT_CLIENT / "node_modules" / ".package-lock.json"
    lock = TYPESCRIPT_CLIENT / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_typescript_client_end_to_end(authenticated_make_run: SecureEndpoints) -> None:
    env = authenticated_make_run.client_env()
    if not node_modules_current():
        run_tool(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], TYPESCRIPT_CLIENT, env)
    run_tool(["npm", "run", "build"], TYPESCRIPT_CLIENT, env)
    output = run_tool(["npm", "test"], TYPESCRIPT_CLIENT, env)
    assert "# pass 1" in output and "# skipped 0" in output, output


def maven_resolved_stamp() -> Path:
    """Marks a local Maven repository that already holds everything this pom needs."""
    pom_hash = hashlib.sha256((JAVA_CLIENT / "pom.xml").read_bytes()).hexdigest()[:16]
    return JAVA_CLIENT / "target" / f".dependencies-resolved-{pom_hash}"


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_java_client_end_to_end(authenticated_make_run: SecureEndpoints) -> None:
    env = authenticated_make_run.client_env()
    stamp = maven_resolved_stamp()
    offline = ["-o"] if stamp.exists() else []
    run_tool(["mvn", "-q", "-B", *offline, "test"], JAVA_CLIENT, env)
    stamp.touch()

    report = JAVA_CLIENT / "target" / "surefire-reports" / "TEST-dev.framevault.e2e.EndToEndTest.xml"
    suite = ElementTree.parse(report).getroot()
    assert (suite.get("tests"), suite.get("skipped"), suite.get("failures"), suite.get("errors")) == (
        "1", "0", "0", "0"), ElementTree.tostring(suite, encoding="unicode")[:4000]
