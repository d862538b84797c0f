"""The frames page sorted by a metadata key, in a real Chromium against ``make run``'s services and gateway."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from .browser import artifact_path
from .test_pages import frames_path, tile_ids, wait_for_tiles

# v1 of seed.py: meta.index of the context frames (drive-a 0..2, drive-b 0..1); the other three
# frames lack the key and come last either way, by frame id like equal values.
ASCENDING = ["drive-a-0", "drive-b-0", "drive-a-1", "drive-b-1", "drive-a-2", "masked", "painted", "unreachable"]
DESCENDING = ["drive-a-2", "drive-a-1", "drive-b-1", "drive-a-0", "drive-b-0", "masked", "painted", "unreachable"]


def wait_for_order(page: Page, expected: list[str]) -> None:
    page.wait_for_function(
        "(ids) => JSON.stringify(Array.from(document.querySelectorAll('[data-testid=frame-tile]'),"
        " t => t.dataset.frame)) === JSON.stringify(ids)", arg=expected)


def test_choosing_a_metadata_sort_orders_the_grid_and_the_keys_still_move(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded))
    wait_for_tiles(page)
    sequential = tile_ids(page)
    assert sequential[:3] == ["drive-a-0", "drive-a-1", "drive-a-2"]

    page.get_by_test_id("sort-mode").select_option("metadata")
    page.get_by_test_id("sort-key").fill("meta.index")
    page.get_by_test_id("sort-key").press("Enter")
    page.wait_for_url(re.compile(r"sort=meta\.index"))
    wait_for_order(page, ASCENDING)
    expect(page.get_by_test_id("order")).to_contain_text("meta.index")
    page.screenshot(path=artifact_path("frames-sorted-by-meta-index"))

    page.get_by_test_id("sort-descending").check()
    page.wait_for_url(re.compile(r"desc=1"))
    wait_for_order(page, DESCENDING)
    page.screenshot(path=artifact_path("frames-sorted-by-meta-index-descending"))

    # Keyboard navigation walks the tiles in the order shown.
    page.get_by_test_id("frame-tile").first.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator(f"[data-testid=frame-tile][data-frame='{DESCENDING[1]}']")).to_be_focused()
    page.keyboard.press("End")
    expect(page.locator(f"[data-testid=frame-tile][data-frame='{DESCENDING[-1]}']")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/frames/{DESCENDING[-1]}(\?|$)"))

    # Back to the sequential order.
    page.goto(frames_path(seeded, query="?sort=meta.index&desc=1"))
    wait_for_order(page, DESCENDING)
    page.get_by_test_id("sort-mode").select_option("sequential")
    page.wait_for_url(lambda url: "sort=" not in url)
    wait_for_order(page, sequential)


def test_a_bad_sort_key_shows_the_error(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded, query="?sort=meta.a..b"))
    error = page.get_by_test_id("sort-error")
    expect(error).to_contain_text("sort: ")
    expect(error).to_contain_text("must not be empty")
    page.screenshot(path=artifact_path("frames-bad-sort-key"))
