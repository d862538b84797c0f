"""CountViewFrames and the paginated ListViewFrames."""

from __future__ import annotations

import grpc
import pytest

from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of, violated_fields
from .corpus import Corpus, make_frame, ref, roi


@pytest.fixture(scope="module")
async def versions(corpus: Corpus) -> tuple[view_pb2.VersionRef, view_pb2.VersionRef]:
    dataset = await corpus.dataset()
    first, second = await corpus.version(dataset, "a"), await corpus.version(dataset, "b")
    await corpus.put_many(first, [make_frame(f"a{i:03d}", context=f"c{i % 5}", timestamp=i,
                                             rois=[roi("car" if i % 2 else "bus")]) for i in range(230)])
    await corpus.put_many(second, [make_frame(f"b{i:03d}", context="c", timestamp=i) for i in range(40)])
    return ref(first), ref(second)


async def test_count_sums_selections_and_ignores_mode(versions: tuple, metadata_stub: Stub) -> None:
    first, second = versions
    view = view_of(view_pb2.ViewSelection(version=first, query="label:car"), view_pb2.ViewSelection(version=second),
                   view_pb2.ViewSelection(version=second), infinite=True, max_frames=3,
                   order=view_pb2.ITERATION_ORDER_RANDOM)
    response = await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=view))
    assert response.count == 115 + 40 + 40


@pytest.mark.parametrize("order", [view_pb2.ITERATION_ORDER_SEQUENTIAL, view_pb2.ITERATION_ORDER_RANDOM])
async def test_pages_follow_the_iteration_order(versions: tuple, metadata_stub: Stub, order: int) -> None:
    first, second = versions
    view = view_of(view_pb2.ViewSelection(version=first), view_pb2.ViewSelection(version=second, query="NOT label:x"),
                   order=order, random_seed=4)
    expected = (await iterate(metadata_stub, view)).ids

    listed: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=50, page_token=token))
        listed += [f.id for f in page.frames]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert listed == expected
    assert pages == 6  # 270 frames: five full pages and one of 20


async def test_page_size_defaults_and_last_page_has_no_token(versions: tuple, metadata_stub: Stub) -> None:
    _, second = versions
    view = view_of(view_pb2.ViewSelection(version=second))
    page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view))
    assert len(page.frames) == 40 and page.next_page_token == ""
    exact = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=40))
    assert len(exact.frames) == 40 and exact.next_page_token == ""
    view_capped = view_of(view_pb2.ViewSelection(version=second), max_frames=15, infinite=True)
    capped = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view_capped, page_size=10))
    rest = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(
        view=view_capped, page_size=10, page_token=capped.next_page_token))
    assert len(capped.frames) == 10 and len(rest.frames) == 5 and rest.next_page_token == ""


async def test_page_token_of_another_view_is_rejected(versions: tuple, metadata_stub: Stub) -> None:
    first, second = versions
    page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(
        view=view_of(view_pb2.ViewSelection(version=first)), page_size=5))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(
            view=view_of(view_pb2.ViewSelection(version=second)), page_token=page.next_page_token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["page_token"]
