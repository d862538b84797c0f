"""The web app in a real Chromium against ``make run``'s services and gateway.

Drawings are checked on the pixels of screenshots: the seeded images are one plain colour, so a pixel
of another colour was put there by the viewer, and its place says whether the shape landed where its
coordinates (image pixels, frame.proto) put it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from e2e.flows import unique
from playwright.sync_api import Page, expect

from . import seed
from .browser import artifact_path, blend, close_to, hex_colour, screenshot_of_stage, sign_in
from .conftest import WebApp, seed_dataset

# The viewer fills shapes at this opacity (clients/web/src/overlay.tsx, ROI_FILL_OPACITY).
ROI_FILL_OPACITY = 0.3


def frames_path(ids: dict[str, Any], version: str = "v1_id", query: str = "") -> str:
    return f"/datasets/{ids['dataset_id']}/versions/{ids[version]}{query}"


def viewer_path(ids: dict[str, Any], frame_id: str, version: str = "v1_id", query: str = "") -> str:
    return f"{frames_path(ids, version)}/frames/{quote(frame_id, safe='')}{query}"


def tile_ids(page: Page, kind: str = "frame") -> list[str]:
    return page.get_by_test_id(f"{kind}-tile").evaluate_all(
        f"tiles => tiles.map(t => t.dataset.{'frame' if kind == 'frame' else 'context'})")


def wait_for_tiles(page: Page, kind: str = "frame") -> None:
    expect(page.get_by_test_id(f"{kind}-tile").first).to_be_visible()


def shown_frame(page: Page, frame_id: str, *, previous: bool, following: bool) -> None:
    """Waits until the viewer shows ``frame_id`` with its neighbours in the context."""
    page.wait_for_url(re.compile(rf"/frames/{frame_id}(\?|$)"))
    expect(page.get_by_test_id("frame-id")).to_have_text(frame_id)
    for button, enabled in (("previous-frame", previous), ("next-frame", following)):
        expect(page.get_by_test_id(button)).to_be_enabled(enabled=enabled)


def open_viewer(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_function("() => { const img = document.querySelector('[data-testid=frame-image]');"
                           " return img && img.complete && img.naturalWidth > 0; }")


def test_anonymous_visitor_is_sent_to_sign_in_and_back(anonymous_page: Page, web_app: WebApp,
                                                       seeded: dict[str, Any]) -> None:
    wanted = frames_path(seeded)
    anonymous_page.goto(wanted)
    anonymous_page.wait_for_url(re.compile(r"/sign-in\?next="))
    assert anonymous_page.url.endswith("/sign-in?next=" + quote(wanted, safe=""))
    sign_in(anonymous_page, web_app.token)
    anonymous_page.wait_for_url(f"**{wanted}")
    wait_for_tiles(anonymous_page)


def test_sign_in_refuses_a_wrong_key(anonymous_page: Page) -> None:
    anonymous_page.goto("/sign-in")
    anonymous_page.get_by_label("API key or token").fill("fvk_not-a-key")
    anonymous_page.get_by_role("button", name="Sign in").click()
    expect(anonymous_page.get_by_role("alert")).to_contain_text("not accepted")
    assert "/sign-in" in anonymous_page.url


def test_datasets_page_lists_the_seeded_dataset(page: Page, seeded: dict[str, Any]) -> None:
    page.goto("/")
    card = page.locator(f"[data-testid=dataset-card][data-dataset='{seeded['name']}']")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("version-count")).to_have_text("2")
    # The newest version is the draft: v1's 8 frames, one removed, two added.
    expect(card.get_by_test_id("frame-count")).to_contain_text("9 in Current")
    expect(card.get_by_label("top labels")).to_contain_text("car")

    page.get_by_label("Filter by name").fill(seeded["name"])
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"\?name="))
    expect(page.get_by_test_id("dataset-card")).to_have_count(1)


def test_frames_page_pages_with_keyset_tokens(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded, query="?size=3"))
    seen: list[str] = []
    while True:
        wait_for_tiles(page)
        ids = tile_ids(page)
        assert 1 <= len(ids) <= 3, ids
        seen.extend(ids)
        following = page.get_by_test_id("next-page")
        if following.is_disabled():
            break
        following.click()
        page.wait_for_function("(before) => !document.querySelector(`[data-frame='${before}']`)", arg=ids[0])
    assert sorted(seen) == sorted(["drive-a-0", "drive-a-1", "drive-a-2", "drive-b-0", "drive-b-1", "painted",
                                   "masked", "unreachable"])
    page.get_by_test_id("previous-page").click()
    page.wait_for_function("(before) => document.querySelector(`[data-frame='${before}']`)", arg=seen[3])


def test_frames_page_groups_by_context_and_plays_a_context(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded, query="?size=2"))
    wait_for_tiles(page)
    page.get_by_test_id("group-by-context").check()
    page.wait_for_url(re.compile(r"group=context"))
    contexts: list[str] = []
    while True:
        wait_for_tiles(page, "context")
        shown = tile_ids(page, "context")
        assert 1 <= len(shown) <= 2, shown
        contexts.extend(shown)
        following = page.get_by_test_id("next-page")
        if following.is_disabled():
            break
        following.click()
        page.wait_for_function("(before) => !document.querySelector(`[data-context='${before}']`)", arg=shown[0])
    # One tile per context id, each once.
    assert sorted(contexts) == sorted(["drive-a", "drive-b", "drive-painted", "drive-masked", "drive-unreachable"])

    page.goto(frames_path(seeded, query="?group=context&context=drive-a"))
    wait_for_tiles(page)
    assert tile_ids(page) == ["drive-a-0", "drive-a-1", "drive-a-2"]  # timestamp order
    page.get_by_test_id("play").click()
    shown_frame(page, "drive-a-0", previous=False, following=True)
    page.keyboard.press("ArrowRight")
    shown_frame(page, "drive-a-1", previous=True, following=True)
    page.keyboard.press("ArrowRight")
    shown_frame(page, "drive-a-2", previous=True, following=False)
    page.keyboard.press("ArrowLeft")
    shown_frame(page, "drive-a-1", previous=True, following=True)


def test_a_query_narrows_the_grid(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded))
    wait_for_tiles(page)
    assert len(tile_ids(page)) == 8
    page.get_by_test_id("query").fill('label:person AND meta.weather:"rain"')
    page.get_by_test_id("query").press("Enter")
    page.wait_for_url(re.compile(r"\?q="))
    page.wait_for_function("() => document.querySelectorAll('[data-testid=frame-tile]').length === 2")
    assert sorted(tile_ids(page)) == ["drive-b-0", "drive-b-1"]


def test_a_malformed_query_shows_its_error_and_position_beside_the_box(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded, query="?q=" + quote("label:car AND meta.speed:[1 TO")))
    error = page.get_by_test_id("query-error")
    expect(error).to_be_visible()
    position = error.get_attribute("data-position")
    assert position and position.isdigit(), position
    expect(error).to_contain_text(f"position {position}")
    expect(page.get_by_test_id("query")).to_have_attribute("aria-invalid", "true")


def test_viewer_draws_the_box_and_the_polygon_where_they_belong(page: Page, seeded: dict[str, Any]) -> None:
    open_viewer(page, viewer_path(seeded, "painted"))
    expect(page.locator("[data-testid=overlay] [data-kind=polygon]")).to_have_count(1)
    car = hex_colour(page.locator("[data-testid=label-colour][data-label=car]").get_attribute("data-colour") or "")
    road = hex_colour(page.locator("[data-testid=label-colour][data-label=road]").get_attribute("data-colour") or "")
    shot = screenshot_of_stage(page, seed.IMAGE_SIZE[0], "viewer-box-and-polygon")
    grey = seed.IMAGE_COLOUR
    x, y, w, h = seed.BOX
    checks = {
        "inside the box": (shot.at(x + w / 2, y + h * 0.75), blend(grey, car, ROI_FILL_OPACITY)),
        "inside the box, near its corner": (shot.at(x + 5, y + h - 5), blend(grey, car, ROI_FILL_OPACITY)),
        "left of the box": (shot.at(x - 10, y + h / 2), grey),
        "below the box": (shot.at(x + w / 2, y + h + 12), grey),
        "inside the triangle": (shot.at(300, 100), blend(grey, road, ROI_FILL_OPACITY)),
        "inside the triangle's bounding box, outside the triangle": (shot.at(250, 200), grey),
        "inside the polygon's second part": (shot.at(70, 230), blend(grey, road, ROI_FILL_OPACITY)),
        "between the two parts": (shot.at(170, 230), grey),
    }
    wrong = {place: (seen, expected) for place, (seen, expected) in checks.items() if not close_to(seen, expected)}
    assert not wrong, f"pixels (seen, expected): {wrong}"

    # Hiding a label takes its shape off the image.
    page.locator("[data-testid=label-toggle][data-label=car]").uncheck()
    expect(page.locator("[data-testid=overlay] [data-kind=box]")).to_have_count(0)
    hidden = screenshot_of_stage(page, seed.IMAGE_SIZE[0], "viewer-car-hidden")
    assert close_to(hidden.at(x + w / 2, y + h * 0.75), grey)


def test_minimum_confidence_hides_less_confident_rois(page: Page, seeded: dict[str, Any]) -> None:
    open_viewer(page, viewer_path(seeded, "painted"))
    expect(page.locator("[data-testid=overlay] [data-kind=box]")).to_have_count(1)
    page.get_by_test_id("min-confidence").fill("0.95")
    # The box's confidence is 0.9; the polygon is ground truth (no confidence) and stays.
    expect(page.locator("[data-testid=overlay] [data-kind=box]")).to_have_count(0)
    expect(page.locator("[data-testid=overlay] [data-kind=polygon]")).to_have_count(1)


def test_mask_overlay_shows_the_mask_colour(page: Page, seeded: dict[str, Any]) -> None:
    open_viewer(page, viewer_path(seeded, "masked"))
    page.wait_for_function("() => { const m = document.querySelector('[data-testid=mask]');"
                           " return m && m.complete && m.naturalWidth > 0; }")
    expect(page.get_by_test_id("mask-legend")).to_contain_text("sky")
    page.get_by_test_id("mask-opacity").fill("1")
    left, top, right, bottom = seed.MASK_RECT
    inside, outside = ((left + right) / 2, (top + bottom) / 2), (left / 2, (bottom + seed.IMAGE_SIZE[1]) / 2)
    opaque = screenshot_of_stage(page, seed.IMAGE_SIZE[0], "viewer-mask-opaque")
    assert close_to(opaque.at(*inside), seed.MASK_COLOUR), opaque.at(*inside)
    # Black mask pixels carry no label: the image shows through.
    assert close_to(opaque.at(*outside), seed.IMAGE_COLOUR), opaque.at(*outside)

    page.get_by_test_id("mask-opacity").fill("0.5")
    half = screenshot_of_stage(page, seed.IMAGE_SIZE[0], "viewer-mask-half")
    assert close_to(half.at(*inside), blend(seed.IMAGE_COLOUR, seed.MASK_COLOUR, 0.5)), half.at(*inside)


def test_a_frame_whose_image_cannot_load_still_shows_its_annotations(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(viewer_path(seeded, "unreachable"))
    missing = page.get_by_test_id("image-missing")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("Image unavailable")
    expect(page.locator("[data-testid=overlay] [data-kind=box]")).to_have_count(1)
    expect(page.get_by_test_id("roi-list")).to_contain_text("car")


def test_diff_page_lists_the_changed_frames_and_opens_both_sides(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(f"/datasets/{seeded['dataset_id']}/diff?from={seeded['v1_id']}&to={seeded['current_id']}")
    for change in ("added", "changed", "removed"):
        section = page.get_by_test_id(f"diff-{change}")
        expect(section.get_by_test_id("diff-frame")).to_have_count(len(seeded[change]))
        assert section.get_by_test_id("diff-frame").all_inner_texts() == seeded[change]

    page.get_by_test_id("diff-changed").get_by_test_id("diff-frame").first.click()
    page.wait_for_url(re.compile(rf"/frames/{seeded['changed'][0]}\?compare="))
    expect(page.get_by_test_id("side")).to_have_count(2)
    expect(page.get_by_test_id("side").nth(0).get_by_test_id("source")).to_have_count(1)
    expect(page.get_by_test_id("roi-list")).to_contain_text("truck")

    page.goto(f"/datasets/{seeded['dataset_id']}/diff?from={seeded['v1_id']}&to={seeded['current_id']}")
    page.get_by_test_id("diff-removed").get_by_test_id("diff-frame").first.click()
    expect(page.get_by_test_id("side").nth(1).get_by_test_id("absent")).to_be_visible()
    expect(page.get_by_test_id("side").nth(0).get_by_test_id("source")).to_have_count(1)


def test_a_diff_larger_than_a_page_reaches_its_second_page(page: Page, web_app: WebApp, tmp_path: Path) -> None:
    from framevault.gateway.browse import DIFF_PAGE_SIZE

    own = seed_dataset(web_app, unique("web-diff"), tmp_path, "large-diff", str(DIFF_PAGE_SIZE + 5))
    page.goto(f"/datasets/{own['dataset_id']}/diff?from={own['v1_id']}&to={own['current_id']}")
    added = page.get_by_test_id("diff-added").get_by_test_id("diff-frame")
    expect(added).to_have_count(DIFF_PAGE_SIZE)
    page.get_by_test_id("diff-more").click()
    expect(added).to_have_count(DIFF_PAGE_SIZE + 5)
    assert added.all_inner_texts() == own["added"]
    expect(page.get_by_test_id("diff-more")).to_have_count(0)
    page.screenshot(path=artifact_path("diff-second-page"))

    # An entry of the second page opens the viewer with both sides: the frame is new in `to`.
    added.last.click()
    page.wait_for_url(re.compile(rf"/frames/{own['added'][-1]}\?compare="))
    expect(page.get_by_test_id("side")).to_have_count(2)
    expect(page.get_by_test_id("side").nth(0).get_by_test_id("absent")).to_be_visible()
    expect(page.get_by_test_id("side").nth(1).get_by_test_id("source")).to_have_count(1)


def test_unknown_ids_show_the_not_found_page(page: Page, seeded: dict[str, Any]) -> None:
    unknown = "0" * 24
    for path in (f"/datasets/{unknown}", f"/datasets/{seeded['dataset_id']}/versions/{unknown}",
                 viewer_path(seeded, "no-such-frame"), "/no/such/page"):
        page.goto(path)
        expect(page.get_by_test_id("not-found")).to_be_visible()


def test_version_tree_shows_parents_status_and_allowed_actions(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(f"/datasets/{seeded['dataset_id']}")
    tree = page.get_by_test_id("version-tree")
    v1, current = tree.locator("li[data-version=v1]"), tree.locator("li[data-version=Current]")
    expect(v1).to_contain_text("published")
    expect(current).to_contain_text("draft")
    # Current is v1's child: listed after it, one level in.
    assert tree.locator("li").all_inner_texts()[0].startswith(("●", "v1"))
    # The admin may publish and delete the draft, never a published version.
    expect(current.get_by_role("button", name="Publish")).to_be_visible()
    expect(current.get_by_role("button", name="Delete draft")).to_be_visible()
    expect(v1.get_by_role("button", name="Publish")).to_have_count(0)
    expect(v1.get_by_role("button", name="Delete draft")).to_have_count(0)


def test_statistics_chart_label_counts_and_a_metadata_distribution(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded, query="/statistics?meta_key=weather"))
    labels = page.get_by_test_id("label-chart")
    expect(labels.locator("[data-bar=car]")).to_have_attribute("data-value", "5")
    expect(labels.locator("[data-bar=person]")).to_have_attribute("data-value", "2")
    weather = page.get_by_test_id("meta-chart")
    expect(weather.locator("[data-bar=sunny]")).to_have_attribute("data-value", "3")
    expect(weather.locator("[data-bar=rain]")).to_have_attribute("data-value", "2")


def test_grid_keyboard_moves_between_tiles_and_opens_one(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(frames_path(seeded))
    wait_for_tiles(page)
    page.get_by_test_id("frame-tile").first.focus()
    page.keyboard.press("ArrowRight")
    second = tile_ids(page)[1]
    expect(page.locator(f"[data-frame='{second}']")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/frames/{second}$"))
    # The viewer listens for keys once it has rendered; a key pressed while only the URL has changed is lost.
    expect(page.get_by_test_id("panel")).to_contain_text(second)
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(rf"{frames_path(seeded)}$"))


def test_frame_group_sources_are_switchable_and_side_by_side(page: Page, seeded: dict[str, Any]) -> None:
    page.goto(viewer_path(seeded, seed.STEREO_ID, version="current_id"))
    tabs = page.get_by_test_id("source-tab")
    expect(tabs).to_have_text(["left", "right"])
    source = page.get_by_test_id("source")
    expect(source).to_have_count(1)
    expect(source).to_have_attribute("data-source", "left")
    # The box belongs to the left camera only.
    expect(source.locator("[data-kind=box]")).to_have_count(1)
    tabs.nth(1).click()
    expect(source).to_have_attribute("data-source", "right")
    expect(source.locator("[data-kind=box]")).to_have_count(0)
    expect(page.get_by_test_id("panel")).to_contain_text("camera")

    page.get_by_test_id("side-by-side").check()
    expect(source).to_have_count(2)
    expect(page.locator("[data-testid=source][data-source=left] [data-kind=box]")).to_have_count(1)
    expect(page.locator("[data-testid=source][data-source=right] [data-kind=box]")).to_have_count(0)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=frame-image]')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    left, right = (page.locator(f"[data-testid=source][data-source={side}] [data-testid=stage]").bounding_box()
                   for side in ("left", "right"))
    assert left and right and left["x"] + left["width"] <= right["x"], (left, right)  # beside each other


def test_version_actions_create_a_child_draft_and_delete_it(page: Page, web_app: WebApp,
                                                            tmp_path: Path) -> None:
    """Both actions are POST/DELETE calls the gateway only takes with the session's CSRF token.

    They change a version tree, so they act on a dataset of their own: the session's dataset keeps the
    versions every other test counts and opens, whichever test runs first."""
    own = seed_dataset(web_app, unique("web-versions"), tmp_path)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/datasets/{own['dataset_id']}")
    tree = page.get_by_test_id("version-tree")
    expect(tree.locator("li")).to_have_count(2)
    tree.locator("li[data-version=v1]").get_by_role("button", name="Create child").click()
    page.get_by_placeholder("Name of the new draft").fill("experiment")
    page.get_by_role("button", name="Create", exact=True).click()
    child = tree.locator("li[data-version=experiment]")
    expect(child).to_contain_text("draft")
    child.get_by_role("button", name="Delete draft").click()
    expect(child).to_have_count(0)
    expect(tree.locator("li")).to_have_count(2)
