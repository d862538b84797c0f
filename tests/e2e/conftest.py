"""Fixtures of the process-level tier: the services as ``make run`` runs them.

``make_run`` starts ``framevault-stack run``, the command behind
``make run``, with free ports and this session's own database and bucket; the
tests then drive the services from other processes (the CLI, SDK scripts, the
generated clients) and over plain gRPC, like users do. ``separate_services``
starts each service through the same launcher code as its own process, so a
test can kill one of them and start it again. ``secure_make_run`` is
``make run`` as the Makefile runs it: mutual TLS, and a client config file.
All of them run with security on (the stack's secrets) and share the world's
admin key, which the first metadata service to start issues.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from framevault.stack.pki import LocalPki
from framevault.stack.services import SERVICE_NAMES, service_env
from framevault.stack.session_data import make_bucket, remove_test_data
from framevault.stack.settings import REPO_ROOT

from .launch import (
    LAUNCHER,
    Endpoints,
    SecureEndpoints,
    SeparateServices,
    World,
    caller_environment,
    wait_for_banner,
)
from .prebuild import PREBUILDS


def pytest_collection_finish(session: pytest.Session) -> None:
    """The slow builds the session's end-to-end tests need (their modules' BACKGROUND_BUILDS) start now,
    beside the tests that run before them."""
    PREBUILDS.start_needed(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    PREBUILDS.stop_all()


@pytest.fixture(scope="session")
def world(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run_id = uuid.uuid4().hex[:10]
    created = World(database=f"fve2e_{run_id}", bucket=f"fve2e-{run_id}",
                    admin_key_file=tmp_path_factory.mktemp("e2e-admin") / "admin.key")
    make_bucket(created.bucket)
    yield created
    remove_test_data(database=created.database, bucket=created.bucket)


@contextlib.contextmanager
def launched(logs: Path, env: dict[str, str], *options: str) -> Iterator[None]:
    """``make run``'s launcher with ``env`` and ``options`` until its banner, stopped with Ctrl-C at the end."""
    banner_path, log_path = logs / "stdout.txt", logs / "services.log"
    with banner_path.open("wb") as stdout, log_path.open("wb") as stderr:
        launcher = subprocess.Popen([*LAUNCHER, *options], env=env, cwd=REPO_ROOT, stdout=stdout, stderr=stderr)
    try:
        wait_for_banner(launcher, banner_path, log_path)
        yield
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()


@pytest.fixture(scope="session")
def make_run(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """Both services started by ``make run``'s launcher, stopped with Ctrl-C at the end."""
    overrides = world.service_overrides()
    with launched(tmp_path_factory.mktemp("make-run"), {**caller_environment(), **overrides}):
        yield Endpoints(overrides["FRAMEVAULT_METADATA_ADDRESS"], overrides["FRAMEVAULT_BLOB_ADDRESS"],
                        world.admin_key_file)


@pytest.fixture(scope="session")
def secure_make_run(world: World, stack_pki: LocalPki,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureEndpoints]:
    """Both services as ``make run`` starts them (``--secure``: mutual TLS with the local CA); the launcher
    writes its client config file into a config home of the session, never the user's."""
    overrides = world.service_overrides()
    config_home = tmp_path_factory.mktemp("config-home")
    env = {key: value for key, value in caller_environment().items() if key != "FRAMEVAULT_CONFIG"}
    logs = tmp_path_factory.mktemp("secure-make-run")
    with launched(logs, {**env, **overrides, "XDG_CONFIG_HOME": str(config_home)}, "--secure"):
        yield SecureEndpoints(overrides["FRAMEVAULT_METADATA_ADDRESS"], overrides["FRAMEVAULT_BLOB_ADDRESS"],
                              world.admin_key_file, stack_pki.client_env(), config_home, logs / "stdout.txt")


@pytest.fixture(scope="session")
def authenticated_make_run(secure_make_run: SecureEndpoints) -> SecureEndpoints:
    """``make run`` as the Makefile runs it, for tests about its admin key: every ``make run`` runs
    with security on, so this is ``secure_make_run``."""
    return secure_make_run


@pytest.fixture()
def separate_services(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeparateServices]:
    services = SeparateServices(service_env({**caller_environment(), **world.service_overrides()}),
                                tmp_path_factory.mktemp("services"))
    try:
        for name in SERVICE_NAMES:
            services.start(name)
        yield services
    finally:
        services.stop_all()
