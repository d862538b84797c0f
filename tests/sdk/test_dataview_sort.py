"""DataView.set_sort: a view ordered by a frame-metadata key, read by pages (ListViewFrames)."""

from __future__ import annotations

import pytest

from framevault.sdk import ClientSettings, DataView, InvalidArgumentError, IterationOrder
from framevault.v1 import view_pb2

from .test_sdk_end_to_end import new_draft, still


def test_set_sort_builds_the_metadata_order_of_the_view() -> None:
    view = DataView(sort_by="meta.weather.rain", sort_descending=True)
    view.add_query(dataset_name="d")
    sent = view.to_proto()
    assert sent.order == view_pb2.ITERATION_ORDER_METADATA
    assert (sent.metadata_order.key, sent.metadata_order.descending) == ("meta.weather.rain", True)
    assert view.iteration_order is IterationOrder.metadata
    view.set_iteration_parameters(order="sequential")
    assert not view.to_proto().HasField("metadata_order")
    for key in ("speed", "meta.", ""):
        with pytest.raises(ValueError, match="meta.<key path>"):
            DataView().set_sort(key)
    with pytest.raises(ValueError, match="read by pages"):
        view.set_sort("meta.speed")
        view.aget_iterator()


async def test_pages_and_to_list_follow_the_metadata_key(sdk: ClientSettings) -> None:
    name, draft = await new_draft(sdk, "sdk-sort")
    await draft.aadd_frames([still("a", "c", 0, speed=30), still("b", "c", 1, speed=7.5), still("c", "c", 2),
                             still("d", "c", 3, speed=30.0), still("e", "c", 4, speed=90)], progress=False)
    view = DataView()
    view.add_query(dataset_name=name)
    view.set_sort("meta.speed", descending=True)
    first = await view.aget_page(page_size=2)
    assert [frame.id for frame in first.frames] == ["e", "a"] and first.next_page_token
    rest = await view.aget_page(page_size=10, page_token=first.next_page_token)
    assert [frame.id for frame in rest.frames] == ["d", "b", "c"] and rest.next_page_token == ""
    view.set_sort("meta.speed")
    assert [frame.id for frame in await view.ato_list()] == ["b", "a", "d", "e", "c"]

    view.set_sort("meta.a..b")
    with pytest.raises(InvalidArgumentError) as caught:
        await view.aget_page()
    assert [v.field for v in caught.value.field_violations] == ["view.metadata_order.key"]
