"""The gateway's HTTP API over the real services: sessions, CSRF, errors, every endpoint on seeded data."""

from __future__ import annotations

import dataclasses
import io
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.gateway.app import build_app
from framevault.gateway.backend import Backends
from framevault.gateway.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionSealer,
    SessionSecretMissing,
)

from .conftest import MASK_COLOUR, Seeded, gateway_settings, png


def _error(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, dict)
    return error


async def _download(url: str) -> httpx.Response:
    """What the browser fetches after the redirect: the object store's URL, not the gateway."""
    assert not url.startswith("/")
    async with httpx.AsyncClient(timeout=30) as store:
        answer = await store.get(url)
    assert answer.status_code == 200, answer.text
    return answer


async def _sign_in(web: httpx.AsyncClient, token: str) -> httpx.Response:
    return await web.post("/api/session", json={"token": token})


# -- sessions and CSRF ------------------------------------------------------------


async def test_sign_in_sets_an_http_only_strict_session_cookie_and_a_csrf_cookie(
        web: httpx.AsyncClient, seeded: Seeded) -> None:
    from support import admin_token

    signed_in = await _sign_in(web, admin_token())

    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["caller"]["admin"] is True
    cookies = {header.split("=", 1)[0]: header.lower() for header in signed_in.headers.get_list("set-cookie")}
    assert "httponly" in cookies[SESSION_COOKIE] and "samesite=strict" in cookies[SESSION_COOKIE]
    assert "path=/" in cookies[SESSION_COOKIE]
    # Plain HTTP here: a Secure cookie would never come back.
    assert "secure" not in cookies[SESSION_COOKIE]
    assert "httponly" not in cookies[CSRF_COOKIE] and "samesite=strict" in cookies[CSRF_COOKIE]
    # The cookie holds the token sealed, never in clear.
    assert admin_token() not in signed_in.headers.get_list("set-cookie")[0]

    session = await web.get("/api/session")
    assert session.status_code == 200 and session.json()["caller"]["admin"] is True
    listed = await web.get("/api/datasets", params={"name": seeded.name})
    assert [d["name"] for d in listed.json()["datasets"]] == [seeded.name]

    signed_out = await web.delete("/api/session")
    assert signed_out.status_code == 200
    assert (await web.get("/api/session")).status_code == 401


async def test_a_bad_token_signs_nobody_in(web: httpx.AsyncClient) -> None:
    refused = await _sign_in(web, "fv_0123456789abcdef_" + "x" * 43)
    assert refused.status_code == 401
    assert _error(refused)["code"] == "UNAUTHENTICATED"
    assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")

    missing = await web.post("/api/session", json={})
    assert missing.status_code == 400 and _error(missing)["fields"] == [
        {"field": "token", "description": "required: an API key or a JWT"}]
    form = await web.post("/api/session", data={"token": "x"})
    assert form.status_code == 400 and _error(form)["fields"][0]["field"] == "content-type"  # type: ignore[index]


async def test_anonymous_callers_get_401_on_every_api_call(web: httpx.AsyncClient, seeded: Seeded) -> None:
    base = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}"
    for path in ("/api/datasets", "/api/session", f"/api/datasets/{seeded.dataset_id}", f"{base}/frames",
                 f"{base}/frames/a-0", f"{base}/frames/a-0/thumbnail", f"{base}/contexts"):
        answer = await web.get(path)
        assert answer.status_code == 401, path
        assert _error(answer)["reason"] == "SESSION_MISSING"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    web.cookies.set(SESSION_COOKIE, "forged")
    forged = await web.get("/api/datasets")
    assert forged.status_code == 401
    web.cookies.clear()
    malformed = await web.get("/api/datasets", headers={"authorization": "Basic abc"})
    assert malformed.status_code == 401


async def test_a_state_change_without_the_csrf_header_is_refused_and_changes_nothing(
        web: httpx.AsyncClient, seeded: Seeded) -> None:
    from support import admin_token

    await _sign_in(web, admin_token())
    versions = f"/api/datasets/{seeded.dataset_id}/versions"
    before = (await web.get(versions)).json()["versions"]
    body = {"parent_id": seeded.root_id, "name": "from-a-forged-page"}

    for headers in ({}, {"x-csrf-token": "guessed"}):
        refused = await web.post(versions, json=body, headers=headers)
        assert refused.status_code == 403, refused.text
        assert _error(refused)["reason"] == "CSRF_TOKEN_MISMATCH"
    assert (await web.get(versions)).json()["versions"] == before

    created = await web.post(versions, json=body, headers={"x-csrf-token": web.cookies[CSRF_COOKIE]})
    assert created.status_code == 201, created.text
    assert created.json()["parent_ids"] == [seeded.root_id]
    deleted = await web.delete(f"{versions}/{created.json()['id']}", headers={"x-csrf-token": web.cookies[CSRF_COOKIE]})
    assert deleted.status_code == 200, deleted.text


async def test_a_viewer_may_look_but_not_publish(web: httpx.AsyncClient, seeded: Seeded) -> None:
    viewer = {"authorization": f"Bearer {seeded.viewer_token}"}
    version = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.draft_id}"
    shown = await web.get(version, headers=viewer)
    assert shown.status_code == 200
    assert shown.json()["permissions"] == {"can_edit": False, "can_publish": False}

    refused = await web.post(f"{version}/publish", headers=viewer)

    assert refused.status_code == 403, refused.text
    assert _error(refused)["code"] == "PERMISSION_DENIED"
    assert (await web.get(version, headers=viewer)).json()["status"] == "VERSION_STATUS_DRAFT"


# -- errors ------------------------------------------------------------------------


async def test_unknown_ids_answer_not_found_json(admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    ds, v = seeded.dataset_id, seeded.root_id
    for path, resource in [
        ("/api/datasets/ffffffffffffffffffffffff", "dataset"),
        ("/api/datasets/not-an-id", "dataset"),
        (f"/api/datasets/{ds}/versions/ffffffffffffffffffffffff", "version"),
        (f"/api/datasets/{ds}/versions/nope/frames", "version"),
        (f"/api/datasets/ffffffffffffffffffffffff/versions/{v}", "dataset"),
        (f"/api/datasets/{ds}/versions/{v}/frames/no-such-frame", "frame"),
        (f"/api/datasets/{ds}/versions/{v}/frames/no-such-frame/thumbnail", "frame"),
        (f"/api/datasets/{ds}/versions/{v}/frames/a-0/sources/3/image", "source"),
        (f"/api/datasets/{ds}/versions/{v}/frames/a-0/sources/0/masks/5/image", "mask"),
    ]:
        answer = await admin_web.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert _error(answer)["code"] == "NOT_FOUND"
        assert _error(answer)["resource"]["type"] == resource, path  # type: ignore[index]
    unknown = await admin_web.get("/api/no/such/path")
    assert unknown.status_code == 404 and _error(unknown)["message"] == "no such API path"


async def test_a_malformed_query_is_400_with_its_position(admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    base = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}"
    for path in ("/frames", "/contexts"):
        answer = await admin_web.get(base + path, params={"query": "label:car AND (person"})
        assert answer.status_code == 400, answer.text
        error = _error(answer)
        assert error["code"] == "INVALID_ARGUMENT"
        assert error["position"] == 21
        assert [f["field"] for f in error["fields"]] == ["query"]  # type: ignore[attr-defined]
        assert "position" not in error["fields"][0]["description"]  # type: ignore[index]


async def test_unknown_orders_and_bad_paging_are_refused_naming_the_parameter(
        admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    frames = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames"
    for params, field in (({"sort": "city"}, "sort"), ({"desc": "1"}, "desc"), ({"page_size": "0"}, "page_size"),
                          ({"page_size": "201"}, "page_size"), ({"desc": "maybe"}, "desc")):
        answer = await admin_web.get(frames, params=params)
        assert answer.status_code == 400, params
        assert [f["field"] for f in _error(answer)["fields"]] == [field]  # type: ignore[attr-defined]


async def test_every_answer_carries_the_security_headers(web: httpx.AsyncClient, admin_web: httpx.AsyncClient,
                                                         seeded: Seeded) -> None:
    for answer in (await web.get("/api/datasets"), await admin_web.get("/api/datasets"),
                   await admin_web.get(f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames/a-0/"
                                       "sources/0/image"), await web.get("/")):
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert answer.headers["x-content-type-options"] == "nosniff"


# -- every endpoint on seeded data ------------------------------------------------


async def test_datasets_page_cards(admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    listed = await admin_web.get("/api/datasets", params={"name": seeded.name, "tag": "web"})
    (card,) = listed.json()["datasets"]
    assert card["id"] == seeded.dataset_id and card["tags"] == ["web"]
    # "Current" (made with the dataset), root and draft.
    assert card["version_count"] == 3
    assert card["newest_version"]["id"] == seeded.draft_id and card["newest_version"]["frame_count"] == "4"
    # From a published version (the root's frames: its statistics are stored), not the newer draft's.
    assert card["top_labels_version_id"] != seeded.draft_id
    assert card["top_labels"] == [{"label": "car", "count": 2}, {"label": "person", "count": 2}]
    assert card["updated_at"] >= card["update_time"]
    assert (await admin_web.get("/api/datasets", params={"name": seeded.name, "tag": "other"})).json()["datasets"] == []

    dataset = await admin_web.get(f"/api/datasets/{seeded.dataset_id}")
    assert dataset.json()["name"] == seeded.name


async def test_versions_tree_and_actions(admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    base = f"/api/datasets/{seeded.dataset_id}/versions"
    versions = {v["name"]: v for v in (await admin_web.get(base)).json()["versions"]}
    assert versions["draft"]["parent_ids"] == [seeded.root_id]
    assert versions["root"]["status"] == "VERSION_STATUS_PUBLISHED"
    root = (await admin_web.get(f"{base}/{seeded.root_id}")).json()
    assert root["permissions"] == {"can_edit": True, "can_publish": True}
    assert root["mask_labels"] == [{"value": list(MASK_COLOUR), "labels": ["sky"]}]

    child = (await admin_web.post(base, json={"parent_id": seeded.root_id, "name": "to-publish"})).json()
    published = await admin_web.post(f"{base}/{child['id']}/publish")
    assert published.status_code == 200 and published.json()["status"] == "VERSION_STATUS_PUBLISHED"
    again = await admin_web.post(f"{base}/{child['id']}/publish")
    assert again.status_code == 409
    assert (await admin_web.delete(f"{base}/{child['id']}")).status_code == 409

    draft = (await admin_web.post(base, json={"parent_id": child["id"], "name": "to-snapshot"})).json()
    snapshot = await admin_web.post(f"{base}/{draft['id']}/snapshot", json={"name": "snap-1"})
    assert snapshot.status_code == 200, snapshot.text
    assert snapshot.json()["snapshot"]["name"] == "snap-1"
    assert snapshot.json()["draft"]["parent_ids"] == [draft["id"]]
    deleted = await admin_web.delete(f"{base}/{snapshot.json()['draft']['id']}")
    assert deleted.status_code == 200 and deleted.json() == {}


async def test_frames_page_through_the_version_in_context_order(admin_web: httpx.AsyncClient,
                                                                seeded: Seeded) -> None:
    frames = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames"
    seen: list[str] = []
    token = ""
    while True:
        page = (await admin_web.get(frames, params={"page_size": 3, "page_token": token})).json()
        seen += [f["id"] for f in page["frames"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == ["a-0", "a-1", "b-0", "b-1"]
    first = (await admin_web.get(frames, params={"page_size": 1})).json()["frames"][0]
    assert first == {"id": "a-0", "context_id": "drive-a", "timestamp": "0", "roi_count": 1, "labels": ["car"],
                     "width": 64, "height": 48,
                     "thumbnail_url": f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames/a-0/thumbnail"}
    narrowed = (await admin_web.get(frames, params={"query": "label:person"})).json()["frames"]
    assert [f["id"] for f in narrowed] == ["b-0", "b-1"]


async def test_group_by_context_one_tile_per_context_then_its_frames(admin_web: httpx.AsyncClient,
                                                                     seeded: Seeded) -> None:
    base = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.draft_id}"
    first = (await admin_web.get(f"{base}/contexts", params={"page_size": 2})).json()
    rest = (await admin_web.get(f"{base}/contexts", params={"page_size": 2,
                                                            "page_token": first["next_page_token"]})).json()
    tiles = first["contexts"] + rest["contexts"]
    assert rest["next_page_token"] == ""
    assert [(t["context_id"], t["frame_count"], t["first_frame"]["id"]) for t in tiles] == [
        ("drive-a", 2, "a-0"), ("drive-b", 1, "b-0"), ("drive-c", 1, "c-0")]

    ascending = (await admin_web.get(f"{base}/frames", params={"context": "drive-a"})).json()["frames"]
    descending = (await admin_web.get(f"{base}/frames", params={"context": "drive-a", "desc": "1"})).json()["frames"]
    assert [f["id"] for f in ascending] == ["a-0", "a-1"] and [f["id"] for f in descending] == ["a-1", "a-0"]
    assert ascending[1]["labels"] == ["truck"]


async def test_frame_with_its_neighbours_in_the_context(admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    base = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames"
    answers = {frame_id: (await admin_web.get(f"{base}/{frame_id}")).json() for frame_id in ("a-0", "a-1", "b-0")}
    assert answers["a-0"]["neighbours"] == {"previous": None, "next": "a-1"}
    assert answers["a-1"]["neighbours"] == {"previous": "a-0", "next": None}
    assert answers["b-0"]["neighbours"] == {"previous": None, "next": "b-1"}
    frame = answers["a-0"]["frame"]
    assert frame["rois"] == [{"labels": ["car"], "confidence": 0.9,
                              "box": {"x": 4.0, "y": 6.0, "w": 10.0, "h": 8.0}}]
    assert frame["sources"][0]["masks"][0]["id"] == "semantic"


async def test_frame_ids_with_slashes_reach_their_frame(admin_web: httpx.AsyncClient, seeded: Seeded,
                                                        metadata_stub: object) -> None:
    from .conftest import _upload, seeded_frame

    versions = f"/api/datasets/{seeded.dataset_id}/versions"
    draft = (await admin_web.post(versions, json={"parent_id": seeded.root_id, "name": "with-slashes"})).json()
    frame_id = "drive-z/cam 1/0001.png"
    await _upload(metadata_stub, draft["id"], [seeded_frame(frame_id, "drive-z", 0, (1, 2, 3), "cone")])
    base = f"{versions}/{draft['id']}/frames/{quote(frame_id, safe='')}"
    assert (await admin_web.get(base)).json()["frame"]["id"] == frame_id
    assert (await admin_web.get(base + "/sources/0/image")).status_code == 302
    assert (await admin_web.get(base + "/thumbnail")).status_code == 302


async def test_images_and_masks_redirect_to_short_lived_download_urls(admin_web: httpx.AsyncClient,
                                                                      seeded: Seeded) -> None:
    base = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames/a-0"
    image = await admin_web.get(f"{base}/sources/0/image")
    assert image.status_code == 302
    assert "X-Amz-Expires=300" in image.headers["location"]
    served = await _download(image.headers["location"])
    assert served.headers["content-type"] == "image/png"
    assert served.content == png((200, 10, 10))

    mask = await admin_web.get(f"{base}/sources/0/masks/0/image")
    assert mask.status_code == 302
    assert (await _download(mask.headers["location"])).content == png(MASK_COLOUR)


async def test_thumbnail_is_made_on_demand_then_served(admin_web: httpx.AsyncClient, web: httpx.AsyncClient,
                                                       seeded: Seeded) -> None:
    path = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames/b-0/thumbnail"
    made = await admin_web.get(path)
    assert made.status_code == 302, made.text
    served = await _download(made.headers["location"])
    assert served.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(served.content)) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.size == (64, 48)
        pixel = thumbnail.convert("RGB").getpixel((30, 20))
    assert isinstance(pixel, tuple)
    assert all(abs(got - want) <= 8 for got, want in zip(pixel, (10, 10, 200), strict=True)), pixel

    # The second request finds the preview made by the first: the same blob.
    again = await admin_web.get(path)
    assert again.headers["location"].split("?")[0] == made.headers["location"].split("?")[0]

    # A viewer of the dataset reads the same preview, though no frame references it.
    viewer = await web.get(path, headers={"authorization": f"Bearer {seeded.viewer_token}"})
    assert viewer.status_code == 302
    assert viewer.headers["location"].split("?")[0] == made.headers["location"].split("?")[0]
    assert (await _download(viewer.headers["location"])).content == served.content


async def test_a_viewer_gets_a_thumbnail_made_on_demand_for_it(web: httpx.AsyncClient, seeded: Seeded) -> None:
    path = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames/b-1/thumbnail"
    made = await web.get(path, headers={"authorization": f"Bearer {seeded.viewer_token}"})
    assert made.status_code == 302, made.text
    served = await _download(made.headers["location"])
    assert served.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(served.content)) as thumbnail:
        assert thumbnail.format == "JPEG"


async def test_statistics_label_counts_and_a_metadata_distribution(admin_web: httpx.AsyncClient,
                                                                   seeded: Seeded) -> None:
    stats = (await admin_web.get(f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/statistics",
                                 params={"meta_key": "city"})).json()
    assert stats["label_counts"] == [{"label": "car", "count": 2}, {"label": "person", "count": 2}]
    assert stats["frame_count"] == 4 and stats["meta_key"] == "city"
    assert stats["meta_distribution"] == [] and stats["meta_missing_count"] == 4


async def test_diff_lists_added_changed_and_removed_frames(admin_web: httpx.AsyncClient, seeded: Seeded) -> None:
    made = await admin_web.get(f"/api/datasets/{seeded.dataset_id}/versions/{seeded.root_id}/frames/b-1/thumbnail")
    assert made.status_code == 302
    diff = await admin_web.get(f"/api/datasets/{seeded.dataset_id}/diff",
                               params={"from": seeded.root_id, "to": seeded.draft_id})
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert [f["id"] for f in body["changed"]] == ["a-1"]
    assert body["changed"][0]["labels"] == ["truck"]
    # No preview known yet: the draft's thumbnail path, which makes one.
    assert body["changed"][0]["thumbnail_url"] == (
        f"/api/datasets/{seeded.dataset_id}/versions/{seeded.draft_id}/frames/a-1/thumbnail")
    assert "c-0" in [f["id"] for f in body["added"]]
    assert [f["id"] for f in body["removed"]] == ["b-1"]
    # A removed frame's preview (the root's) is known: its download URL, as in the frames grid.
    assert body["removed"][0]["thumbnail_url"].split("?")[0] == made.headers["location"].split("?")[0]

    missing = await admin_web.get(f"/api/datasets/{seeded.dataset_id}/diff", params={"from": seeded.root_id})
    assert missing.status_code == 400 and _error(missing)["fields"][0]["field"] == "to"  # type: ignore[index]


async def test_healthz_answers_without_sign_in(web: httpx.AsyncClient) -> None:
    health = await web.get("/api/healthz")
    assert health.status_code == 200
    assert health.json() == {"serving": True, "services": {"metadata": "SERVING", "blob": "SERVING"}}


def test_a_session_cookie_opens_only_unaltered_under_its_key_and_before_it_expires() -> None:
    sealer = SessionSealer(b"k" * 32, lifetime_seconds=60)
    cookie = sealer.seal("fv_key_secret", now=1000.0)
    assert sealer.open(cookie, now=1001.0) == Session("fv_key_secret", 1060)
    assert "fv_key_secret" not in cookie
    altered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    assert sealer.open(altered, now=1001.0) is None
    assert SessionSealer(b"o" * 32, lifetime_seconds=60).open(cookie, now=1001.0) is None
    assert sealer.open(cookie, now=1060.0) is None
    assert sealer.open("not base64 at all!", now=1001.0) is None


def test_the_gateway_refuses_to_start_without_a_session_secret_when_security_is_on(settings: Settings) -> None:
    with pytest.raises(SessionSecretMissing, match="FRAMEVAULT_GATEWAY_SESSION_SECRET"):
        build_app(dataclasses.replace(settings, security_mode="on", gateway_session_secret=""))


async def test_over_tls_the_session_cookies_are_secure_and_hsts_is_sent(gateway_app: object) -> None:
    from support import admin_token

    transport = httpx.ASGITransport(app=gateway_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client:
        signed_in = await client.post("/api/session", json={"token": admin_token()})
    assert signed_in.status_code == 200
    for header in signed_in.headers.get_list("set-cookie"):
        assert "; secure" in header.lower(), header
    assert signed_in.headers["strict-transport-security"].startswith("max-age=")


async def test_in_local_dev_mode_a_browser_needs_no_sign_in_but_still_the_csrf_header(
        settings: Settings, gateway_backends: Backends, metadata_service: RunningService,
        blob_service: RunningService, seeded: Seeded) -> None:
    local_dev = dataclasses.replace(gateway_settings(settings, metadata_service, blob_service),
                                    security_mode="local-dev", gateway_session_secret="")
    transport = httpx.ASGITransport(app=build_app(local_dev, gateway_backends))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as browser:
        publish = f"/api/datasets/{seeded.dataset_id}/versions/{seeded.draft_id}/publish"
        forged = await browser.post(publish)
        assert forged.status_code == 403 and _error(forged)["reason"] == "CSRF_TOKEN_MISMATCH"

        session = await browser.get("/api/session")
        assert session.json()["caller"]["principal"] == "local-dev"
        assert browser.cookies.get(CSRF_COOKIE)
        # Past the CSRF check the request reaches the services, which (security on) want a token.
        sent = await browser.post(publish, headers={"x-csrf-token": browser.cookies[CSRF_COOKIE]})
        assert sent.status_code == 401 and _error(sent)["code"] == "UNAUTHENTICATED"


async def test_frame_lists_hand_out_download_urls_of_known_previews(admin_web: httpx.AsyncClient, web: httpx.AsyncClient,
                                                                    seeded: Seeded, metadata_stub: object) -> None:
    from .conftest import _upload, seeded_frame

    versions = f"/api/datasets/{seeded.dataset_id}/versions"
    draft = (await admin_web.post(versions, json={"parent_id": seeded.root_id, "name": "known-previews"})).json()
    base = f"{versions}/{draft['id']}"
    stored = seeded_frame("stored-preview", "drive-s", 0, (7, 8, 9), "cone")
    stored.sources[0].preview.inline_content = png((250, 0, 250), (16, 12))
    stored.sources[0].preview.content_type = "image/png"
    await _upload(metadata_stub, draft["id"], [stored, seeded_frame("on-demand", "drive-s", 33, (9, 8, 7), "cone")])
    viewer = {"authorization": f"Bearer {seeded.viewer_token}"}

    def thumbnails(page: dict[str, object]) -> dict[str, str]:
        return {f["id"]: f["thumbnail_url"] for f in page["frames"]}  # type: ignore[attr-defined]

    before = thumbnails((await web.get(f"{base}/frames", params={"context": "drive-s"}, headers=viewer)).json())
    # A stored preview: its download URL at once, asked for with the viewer's credential.
    assert (await _download(before["stored-preview"])).content == png((250, 0, 250), (16, 12))
    # No preview yet: the gateway path that makes one.
    assert before["on-demand"] == f"{base}/frames/on-demand/thumbnail"

    made = await web.get(before["on-demand"], headers=viewer)
    assert made.status_code == 302
    after = thumbnails((await web.get(f"{base}/frames", params={"context": "drive-s"}, headers=viewer)).json())
    assert after["on-demand"].split("?")[0] == made.headers["location"].split("?")[0]
    assert (await _download(after["on-demand"])).headers["content-type"] == "image/jpeg"
    tiles = (await web.get(f"{base}/contexts", headers=viewer)).json()["contexts"]
    tile = next(t for t in tiles if t["context_id"] == "drive-s")
    assert tile["first_frame"]["thumbnail_url"].split("?")[0] == before["stored-preview"].split("?")[0]

    # Anonymous callers still get nothing.
    assert (await web.get(f"{base}/frames")).status_code == 401


async def test_a_diff_larger_than_a_page_pages_with_the_services_cursor_and_the_grids_thumbnails(
        admin_web: httpx.AsyncClient, web: httpx.AsyncClient, seeded: Seeded, metadata_stub: object) -> None:
    from framevault.gateway.browse import DIFF_PAGE_SIZE

    from .conftest import _upload, seeded_frame

    versions = f"/api/datasets/{seeded.dataset_id}/versions"
    draft = (await admin_web.post(versions, json={"parent_id": seeded.root_id, "name": "diff-pages"})).json()
    stored = seeded_frame("d-stored", "drive-d", 0, (7, 8, 9), "cone")
    stored.sources[0].preview.inline_content = png((250, 0, 250), (16, 12))
    stored.sources[0].preview.content_type = "image/png"
    added = [seeded_frame(f"n-{i:03d}", "drive-n", i, (4, 5, 6), "cone") for i in range(DIFF_PAGE_SIZE + 10)]
    await _upload(metadata_stub, draft["id"], [stored, *added])
    viewer = {"authorization": f"Bearer {seeded.viewer_token}"}
    diff = f"/api/datasets/{seeded.dataset_id}/diff"
    compared = {"from": seeded.root_id, "to": draft["id"]}

    first = (await web.get(diff, params=compared, headers=viewer)).json()
    assert [f["id"] for f in first["added"]] == ["d-stored"] + [f.id for f in added[:DIFF_PAGE_SIZE - 1]]
    assert first["changed"] == first["removed"] == [] and first["next_page_token"]
    # Tiles as in the frames grid: a stored preview's download URL, asked for with the viewer's credential.
    assert (await _download(first["added"][0]["thumbnail_url"])).content == png((250, 0, 250), (16, 12))
    on_demand = f"{versions}/{draft['id']}/frames/n-055/thumbnail"
    made = await web.get(on_demand, headers=viewer)
    assert made.status_code == 302

    second = (await web.get(diff, params={**compared, "page_token": first["next_page_token"]}, headers=viewer)).json()
    assert [f["id"] for f in second["added"]] == [f.id for f in added[DIFF_PAGE_SIZE - 1:]]
    assert second["next_page_token"] == ""
    tiles = {f["id"]: f["thumbnail_url"] for f in second["added"]}
    assert tiles["n-055"].split("?")[0] == made.headers["location"].split("?")[0]

    # The page token is the service's cursor of this pair of versions: refused for another pair, or altered.
    for params in ({"from": seeded.root_id, "to": seeded.draft_id, "page_token": first["next_page_token"]},
                   {**compared, "page_token": first["next_page_token"][:-3]}, {**compared, "page_token": "x"}):
        refused = await web.get(diff, params=params, headers=viewer)
        assert refused.status_code == 400, refused.text
        assert [f["field"] for f in _error(refused)["fields"]] == ["page_token"]  # type: ignore[attr-defined]
