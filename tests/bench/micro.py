"""Per-frame CPU cost of the metadata service's pure steps, without any server.

    .venv/bin/python tests/bench/micro.py [--frames 5000] [--rounds 5]

Each step runs over the same bench frames (``workload.py``) and the best of
``--rounds`` is printed in microseconds per frame. The steps are what P1
(upload) and P2 (iteration) pay per frame in the service process besides the
transport and the database; use it to check a change to validation or to the
document layout in seconds instead of a bench run. Garbage collection is
frozen and tuned as in the services (``tune_garbage_collection``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import bson
import workload

from framevault.common.config import Settings
from framevault.common.server import tune_garbage_collection
from framevault.metadata.frame_documents import StoredRevision, encoded_frame
from framevault.metadata.frames.upload import CREATED, ReceivedUploadRequest, _BatchWriter, _results_response, _Segment
from framevault.metadata.frames.validation import FrameLimits, check_frame
from framevault.v1 import metadata_service_pb2 as ms

DATASET_ID = "0" * 24
VERSION_ID = "1" * 24


def best_us_per_frame(step: Callable[[], object], frames: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best / frames * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count = args.frames
    request = ms.UploadFramesRequest(items=[ms.UploadItem(frame=f) for f in workload.frames("micro", count)])
    payload = request.SerializeToString()
    limits = FrameLimits(max_inline_bytes=4 * 1024 * 1024)
    valid = list(ms.UploadFramesRequest.FromString(payload).items)
    for index, item in enumerate(valid):
        check_frame(item.frame, f"frames[{index}]", limits)
    frames = [item.frame for item in valid]
    documents = [workload.frame_document(f, dataset_id=DATASET_ID, version_id=VERSION_ID) for f in frames]
    encoded = [bson.encode(d) for d in documents]
    stored = [StoredRevision(b) for b in encoded]
    tune_garbage_collection(Settings())

    def take_apart() -> ReceivedUploadRequest:
        received = ReceivedUploadRequest(payload, limits)
        received.check()
        return received

    def upload_path() -> None:
        # What UploadFrames does with a request besides the database: take it apart and check its frames
        # (the checker thread), then one batch's pendings, documents and encoded results (the event loop).
        items = take_apart().items
        pendings = _BatchWriter.pendings(_Segment(items, 0, len(items), 0, 1))
        items.documents([p.position for p in pendings], DATASET_ID, VERSION_ID, 1)
        for pending in pendings:
            pending.outcome = CREATED
        _results_response(pendings)

    steps: dict[str, Callable[[], object]] = {
        "take a request apart (codec)": take_apart,
        "... + pendings, documents, results": upload_path,
        "bson.encode (a decoded document)": lambda: [bson.encode(d) for d in documents],
        "bson.decode (a decoded read)": lambda: [bson.decode(b) for b in encoded],
        # What iteration and GetFrame do: stored BSON to Frame bytes in the codec, nothing decoded in Python.
        "encoded_frame (stored BSON, codec)": lambda: [encoded_frame(d, version_id=VERSION_ID) for d in stored],
    }
    print(f"{count} bench frames, best of {args.rounds} rounds")
    for name, step in steps.items():
        print(f"  {name:36s} {best_us_per_frame(step, count, args.rounds):6.1f} us/frame")


if __name__ == "__main__":
    main()
