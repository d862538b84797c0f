"""Fixtures of the browser tests: ``make run`` (services and gateway), a seeded dataset, a signed-in Chromium.

``web_app`` starts ``make run``'s launcher (``framevault-stack run --secure``: security on, mutual TLS,
the gateway serving the built web app of ``make web``) with the end-to-end tier's helpers: a world of
its own (database, bucket, admin key file) and free ports for the services and the gateway. ``seeded``
writes the dataset of ``seed.py`` through the SDK as a user's script. Each test gets its own browser
context (no cookies of another test) and its last screen is kept under ``.test-artifacts/web/``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import launched, world  # noqa: F401  (world: this tier's own database and bucket)
from e2e.flows import run, unique
from e2e.launch import SecureEndpoints, World, caller_environment
from playwright.sync_api import Browser, Page

from framevault.stack.pki import LocalPki
from framevault.stack.settings import REPO_ROOT

from .browser import artifact_path, chromium, new_context, sign_in

WEB_DIST = REPO_ROOT / "clients" / "web" / "dist"
TESTS = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WebApp:
    """``make run`` with its gateway: the web app's address and how a user's script reaches the services."""

    url: str
    services: SecureEndpoints

    @property
    def token(self) -> str:
        return self.services.token


@pytest.fixture(scope="session")
def web_app(world: World, stack_pki: LocalPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:  # noqa: F811
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"the web app is not built ({WEB_DIST}): run `make web` (make test does)")
    overrides = world.service_overrides()
    config_home = tmp_path_factory.mktemp("web-config-home")
    env = {key: value for key, value in caller_environment().items() if key != "FRAMEVAULT_CONFIG"}
    with launched(tmp_path_factory.mktemp("web-make-run"), {**env, **overrides, "XDG_CONFIG_HOME": str(config_home)},
                  "--secure"):
        # The launcher's banner comes once the gateway answers its health check (which asks both services).
        url = f"http://{overrides['FRAMEVAULT_GATEWAY_LISTEN_ADDRESS']}"
        yield WebApp(url, SecureEndpoints(overrides["FRAMEVAULT_METADATA_ADDRESS"], overrides["FRAMEVAULT_BLOB_ADDRESS"],
                                          world.admin_key_file, stack_pki.client_env(), config_home))


def seed_dataset(app: WebApp, name: str, folder: Path, *kind: str) -> dict[str, Any]:
    """``seed.py`` as a user's SDK script against ``make run``'s services (``kind``: the script's
    further arguments, e.g. ``large-diff 55``); the ids it wrote."""
    done = run([sys.executable, "-m", "web.seed", name, str(folder), *kind], app.services.client_env(), TESTS)
    ids: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**ids, "name": name}


@pytest.fixture(scope="session")
def seeded(web_app: WebApp, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return seed_dataset(web_app, unique("web"), tmp_path_factory.mktemp("web-seed"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium() as launched_browser:
        yield launched_browser


@pytest.fixture()
def anonymous_page(browser: Browser, web_app: WebApp, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A visitor who has not signed in; the last screen is kept as a file."""
    context = new_context(browser, web_app.url)
    page = context.new_page()
    try:
        yield page
    finally:
        page.screenshot(path=artifact_path(request.node.name))
        context.close()


@pytest.fixture()
def page(anonymous_page: Page, web_app: WebApp) -> Page:
    """A browser signed in with the admin key ``make run`` issued, on the datasets page."""
    anonymous_page.goto("/sign-in")
    sign_in(anonymous_page, web_app.token)
    return anonymous_page
