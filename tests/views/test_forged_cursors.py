"""Cursors carrying a state this server could not have issued for the view are
refused, even when they are correctly signed (the key may be shared with other
replicas and releases, or left at its default): no call does work the caller
could not legitimately ask for."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from framevault.common.config import Settings
from framevault.common.tokens import VIEW_CURSOR, TokenCodec
from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of, violated_fields
from .corpus import Corpus, make_frame, ref

SEQUENTIAL = view_pb2.ITERATION_ORDER_SEQUENTIAL
RANDOM = view_pb2.ITERATION_ORDER_RANDOM
State = dict[str, Any]


@pytest.fixture(scope="module")
async def selection(corpus: Corpus) -> view_pb2.ViewSelection:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [make_frame(f"f{i:02d}", context=f"c{i % 3}", timestamp=i) for i in range(40)])
    return view_pb2.ViewSelection(version=ref(version))


def _payload(cursor: str) -> dict[str, Any]:
    body = cursor.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def resigned(settings: Settings, cursor: str, change: Callable[[State], None]) -> str:
    """``cursor`` with its state changed, signed with the server's own key."""
    payload = _payload(cursor)
    state = payload["s"]
    change(state)
    return TokenCodec(settings.view_cursor_secret.get_secret_value(), VIEW_CURSOR).encode(payload["k"], payload["b"], state)


def _set_random(field: int, value: Any) -> Callable[[State], None]:
    def change(state: State) -> None:
        state["r"][0][field] = value
    return change


def _set(key: str, value: Any) -> Callable[[State], None]:
    def change(state: State) -> None:
        state[key] = value
    return change


def _set_sequential(field: int, value: Any) -> Callable[[State], None]:
    def change(state: State) -> None:
        state["p"][0][field] = value
    return change


async def _refused(stub: Stub, view: view_pb2.View, cursor: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # The deadline only keeps a server that walks forged buckets from
        # hanging the test; the refusal comes at once.
        async for _ in stub.IterateFrames(ms.IterateFramesRequest(view=view, resume_cursor=cursor), timeout=30):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert violated_fields(caught.value) == ["resume_cursor"]


RANDOM_FORGERIES = {
    # 2^24 empty buckets to walk: the finding.
    "bucket-bits": _set_random(1, 24),
    "bucket-bits-above-the-cap": _set_random(1, 40),
    "ordinal-past-the-buckets": _set_random(2, 1),
    "cycle-of-a-finite-view": _set_random(0, 3),
    "frame-id-too-long": _set_random(3, "x" * 600),
    "frame-id-empty": _set_random(3, ""),
    "taken-frame-without-id": _set_random(3, None),
    "draws-not-matching-frames": _set("d", 7),
    "frame-count-past-max-frames": _set("n", 1000),
    "frame-count-beyond-int64": _set("n", 2**70),
}


@pytest.mark.parametrize("forgery", list(RANDOM_FORGERIES))
async def test_forged_random_positions_are_refused(selection: view_pb2.ViewSelection, metadata_stub: Stub,
                                                    settings: Settings, forgery: str) -> None:
    view = view_of(selection, order=RANDOM, random_seed=5, max_frames=30)
    cursor = (await iterate(metadata_stub, view, per_message=10, limit=1)).cursors[0][1]
    await _refused(metadata_stub, view, resigned(settings, cursor, RANDOM_FORGERIES[forgery]))


SEQUENTIAL_FORGERIES = {
    "timestamp-beyond-int64": _set_sequential(1, 2**70),
    "negative-timestamp": _set_sequential(1, -1),
    "context-id-too-long": _set_sequential(0, "c" * 5000),
    "cycle-flag-without-position": lambda state: state.update(ce=1, p=[None]),
    "position-without-cycle-flag": _set("ce", 0),
}


@pytest.mark.parametrize("forgery", list(SEQUENTIAL_FORGERIES))
async def test_forged_sequential_positions_are_refused(selection: view_pb2.ViewSelection, metadata_stub: Stub,
                                                        settings: Settings, forgery: str) -> None:
    view = view_of(selection, order=SEQUENTIAL)
    cursor = (await iterate(metadata_stub, view, per_message=10, limit=1)).cursors[0][1]
    await _refused(metadata_stub, view, resigned(settings, cursor, SEQUENTIAL_FORGERIES[forgery]))


async def test_a_draft_that_lost_frames_still_resumes(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    # 2100 frames call for 4 shuffle buckets, 2000 for 2: the cursor keeps its 4.
    await corpus.put_many(version, [make_frame(f"g{i:04d}", context="c", timestamp=i) for i in range(2100)])
    view = view_of(view_pb2.ViewSelection(version=ref(version)), order=RANDOM, random_seed=9)
    whole = await iterate(metadata_stub, view, per_message=100)
    first = await iterate(metadata_stub, view, per_message=100, limit=3)
    sent, cursor = first.cursors[-1]
    deleted = set(whole.ids[sent:sent + 100])
    for frame_id in deleted:
        await corpus.delete(version, frame_id)

    rest = await iterate(metadata_stub, view, cursor=cursor, per_message=100)

    assert rest.ids == [i for i in whole.ids[sent:] if i not in deleted]
