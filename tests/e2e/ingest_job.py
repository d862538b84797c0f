"""A user's ingestion job: every image of a folder into a dataset's draft through the Python SDK.

    python ingest_job.py DATASET FOLDER [PAUSE_AFTER RESUME_FILE]

Each image becomes a frame whose id is its path relative to FOLDER, so
running the job again resends the same frames. With PAUSE_AFTER, the frame
source stops after that many frames, with the upload stream open, until
RESUME_FILE exists: the test kills a service in that pause. Prints one JSON
line with the totals, or with the error that ended the upload.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from framevault.sdk import DatasetVersion, FramevaultError, NotFoundError, SingleFrame, configure

PAUSE_LIMIT_SECONDS = 120.0
# Frames are prepared (files hashed and uploaded) and sent in batches of this
# many; the pause comes after whole batches, so the frames before it are sent.
BATCH_FRAMES = 40


async def frames(folder: Path, pause_after: int | None, resume_file: Path | None) -> AsyncIterator[SingleFrame]:
    for index, path in enumerate(sorted(folder.rglob("*.png"))):
        if index == pause_after and resume_file is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + PAUSE_LIMIT_SECONDS
            while not resume_file.exists() and loop.time() < deadline:
                await asyncio.sleep(0.05)
        frame = SingleFrame(id=path.relative_to(folder).as_posix(), source=str(path), width=32, height=24,
                            context_id="job", timestamp=index, metadata={"index": index})
        frame.add_annotation(box2d_xywh=(1, 1, 8, 8), labels=["car"])
        yield frame


async def main(dataset: str, folder: Path, pause_after: int | None, resume_file: Path | None) -> dict[str, object]:
    configure(upload_prepare_batch_frames=BATCH_FRAMES)
    try:
        draft = await DatasetVersion.aget_version(dataset_name=dataset)
    except NotFoundError:
        await DatasetVersion.acreate_new_dataset(dataset_name=dataset)
        draft = await DatasetVersion.aget_version(dataset_name=dataset)
    try:
        totals = await draft.aadd_frames_with_totals(frames(folder, pause_after, resume_file), upload_retries=3,
                                                     progress=False)
    except FramevaultError as exc:
        return {"error": exc.describe()}
    return {"created": totals.created, "updated": totals.updated, "unchanged": totals.unchanged,
            "failed": sorted(f"{f.frame_id}: {f.error.describe()}" for f in totals.failed)}


if __name__ == "__main__":
    pause = int(sys.argv[3]) if len(sys.argv) > 3 else None
    resume = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    print(json.dumps(asyncio.run(main(sys.argv[1], Path(sys.argv[2]), pause, resume))), flush=True)
