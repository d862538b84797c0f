"""Calling the view RPCs from tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import metadata_service_pb2_grpc, view_pb2

try:
    from tests.support import error_details, resource_info, violated_fields
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from support import error_details, resource_info, violated_fields  # type: ignore[no-redef]

__all__ = ["error_details", "resource_info", "violated_fields"]

Stub = metadata_service_pb2_grpc.MetadataServiceStub


@dataclass
class Stream:
    ids: list[str] = field(default_factory=list)
    selections: list[int] = field(default_factory=list)
    # (frames received so far, cursor) after each message.
    cursors: list[tuple[int, str]] = field(default_factory=list)
    frames: list = field(default_factory=list)
    # The cursor after each frame (when asked for with ``frame_cursors``).
    frame_cursors: list[str] = field(default_factory=list)
    # Each message's start_cursor (set only in the first message after a resume offset).
    start_cursors: list[str] = field(default_factory=list)


async def iterate(stub: Stub, view: view_pb2.View, *, cursor: str = "", per_message: int = 0,
                  shard: tuple[int, int] = (0, 0), limit: int | None = None, frame_cursors: bool = False,
                  offset: int = 0) -> Stream:
    """Streams the view; stops after ``limit`` messages when given."""
    request = ms.IterateFramesRequest(view=view, resume_cursor=cursor, frames_per_message=per_message,
                                      shard_index=shard[0], shard_count=shard[1], frame_cursors=frame_cursors,
                                      resume_offset=offset)
    out = Stream()
    call = stub.IterateFrames(request, timeout=60)
    async for message in call:
        assert message.frames, "messages are never empty"
        assert len(message.selection_indexes) == len(message.frames)
        out.frames.extend(message.frames)
        out.ids.extend(f.id for f in message.frames)
        out.selections.extend(message.selection_indexes)
        out.cursors.append((len(out.ids), message.cursor))
        if frame_cursors:
            assert len(message.frame_cursors) == len(message.frames)
            assert message.frame_cursors[-1] == message.cursor
        else:
            assert not message.frame_cursors
        out.frame_cursors.extend(message.frame_cursors)
        out.start_cursors.append(message.start_cursor)
        if limit is not None and len(out.cursors) >= limit:
            call.cancel()
            break
    return out


async def frame_ids(stub: Stub, view: view_pb2.View, **kwargs: object) -> list[str]:
    return (await iterate(stub, view, **kwargs)).ids  # type: ignore[arg-type]


def view_of(*selections: view_pb2.ViewSelection, **options: object) -> view_pb2.View:
    return view_pb2.View(selections=selections, **options)  # type: ignore[arg-type]
