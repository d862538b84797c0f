"""Debian's Chromium driven by Playwright, and reading pixels of its screenshots.

Playwright's own browser builds are never downloaded: the browser is the system's ``/usr/bin/chromium``
(``make install`` installs it), started headless with everything that would reach the network on its own
turned off, in a fresh profile (Playwright gives every launch a new temporary user-data folder).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect, sync_playwright

from framevault.stack.settings import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The smallest screen the web app is made for.
VIEWPORT: ViewportSize = {"width": 1280, "height": 720}
# Screenshots the browser tests keep (git-ignored).
ARTIFACTS = REPO_ROOT / ".test-artifacts" / "web"
# Waits for the page (not assertions on time): a loaded machine may take a while to render.
WAIT_MS = 60_000


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make install` installs Debian's chromium package")
    playwright: Playwright
    # Assertions wait as long as actions: Playwright's own 5 s made every expect() a timed assertion,
    # which a loaded machine failed where a page takes two round trips to change (create, then list).
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    """A context of its own (no cookies of another test) at the web app's smallest size, one pixel per CSS pixel."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(WAIT_MS)
    return context


def sign_in(page: Page, token: str) -> None:
    """Signs in through the sign-in page, as a person does, and waits for the page it leads back to."""
    page.get_by_label("API key or token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)


def artifact_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:150] + ".png")


@dataclass(frozen=True)
class Shot:
    """A screenshot and where an image of known pixel size is shown on it."""

    image: Image.Image
    left: float
    top: float
    scale: float

    def at(self, x: float, y: float) -> tuple[int, int, int]:
        """The screen colour over pixel (x, y) of the shown image."""
        pixel = self.image.getpixel((round(self.left + x * self.scale), round(self.top + y * self.scale)))
        assert isinstance(pixel, tuple)
        return pixel[0], pixel[1], pixel[2]


def screenshot_of_stage(page: Page, image_width: int, name: str) -> Shot:
    """Screenshot (kept under ARTIFACTS) with the place of the viewer's stage: the image, its masks and
    drawings, stretched to the stage's box."""
    box = page.get_by_test_id("stage").first.bounding_box()
    assert box is not None, "the viewer shows no stage"
    png = page.screenshot(path=artifact_path(name))
    return Shot(Image.open(io.BytesIO(png)).convert("RGB"), box["x"], box["y"], box["width"] / image_width)


def blend(under: tuple[int, int, int], over: tuple[int, int, int], opacity: float) -> tuple[int, int, int]:
    return (round(under[0] * (1 - opacity) + over[0] * opacity), round(under[1] * (1 - opacity) + over[1] * opacity),
            round(under[2] * (1 - opacity) + over[2] * opacity))


def hex_colour(text: str) -> tuple[int, int, int]:
    value = text.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def close_to(seen: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 8) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, expected, strict=True))
