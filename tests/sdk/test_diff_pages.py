"""Diffs of versions in pages, and a diff stream that starts after a page: DatasetVersion.diff_page and
iter_diff(page_token=...) against the real services."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from framevault.sdk import ChangeKind, ClientSettings, DatasetVersion, InvalidArgumentError, SingleFrame, current_client

from .test_sdk_recovery import BreakingStream


def still(name: str, timestamp: int, **meta: object) -> SingleFrame:
    return SingleFrame(source=f"s3://bucket/c/{name}.jpg", width=640, height=480, timestamp=timestamp,
                       context_id="c", metadata=dict(meta), id=name)


async def versions_with_a_diff(changes: int) -> tuple[DatasetVersion, DatasetVersion, DatasetVersion]:
    """A published root of three frames, a child that adds ``changes`` frames and removes one, and a sibling."""
    name = f"diff-pages-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    root = await DatasetVersion.aget_version(name)
    await root.aadd_frames([still(f"r{i}", i) for i in range(3)], progress=False)
    await root.apublish_version()
    child = await DatasetVersion.acreate_version(name, "child", parent_version_ids=[root.version_id])
    await child.aadd_frames([still(f"n{i:04d}", 10 + i) for i in range(changes)], progress=False)
    assert await child.adelete_frames(["r1"]) == 1
    sibling = await DatasetVersion.acreate_version(name, "sibling", parent_version_ids=[root.version_id])
    await sibling.aadd_frames([still("s0", 50)], progress=False)
    return root, child, sibling


async def test_a_diff_in_pages_is_the_whole_diff(sdk: ClientSettings) -> None:
    root, child, sibling = await versions_with_a_diff(24)
    whole = [(c.frame_id, c.kind) for c in await root.adiff(child)]
    assert len(whole) == 25 and whole[-1] == ("r1", ChangeKind.removed)

    pages, token = [], ""
    while True:
        page = await root.adiff_page(child, 10, token, include_frames=True)
        pages.append(page.changes)
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [(c.frame_id, c.kind) for p in pages for c in p] == whole
    assert pages[1][0].target is not None and pages[1][0].target.id == whole[10][0]

    # A stream that starts after a page.
    first = await root.adiff_page(child, 4)
    rest = [(c.frame_id, c.kind) async for c in root.aiter_diff(child, page_token=first.next_page_token)]
    assert [(c.frame_id, c.kind) for c in first.changes] + rest == whole

    # A page token belongs to its two versions.
    with pytest.raises(InvalidArgumentError) as caught:
        await root.adiff_page(sibling, 4, first.next_page_token)
    assert [v.field for v in caught.value.field_violations] == ["resume_cursor"]


async def test_a_broken_diff_stream_resumes_after_the_last_message(sdk: ClientSettings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # More changes than one message holds (catalog_diff_message_changes, 500 by default).
    root, child, _ = await versions_with_a_diff(1100)
    expected = [(c.frame_id, c.kind) for c in await root.adiff(child)]
    client = current_client()
    real = client.metadata.DiffVersions
    cursors: list[str] = []

    def flaky(request: Any, **kwargs: Any) -> Any:
        cursors.append(request.resume_cursor)
        call = real(request, **kwargs)
        return BreakingStream(call, keep=1) if len(cursors) == 1 else call

    monkeypatch.setattr(client.metadata, "DiffVersions", flaky)
    assert [(c.frame_id, c.kind) async for c in root.aiter_diff(child)] == expected
    assert len(cursors) == 2 and cursors[0] == "" and cursors[1] != ""
