"""Measures what frames cost in MongoDB: document size, storage and every index, for docs/SCALING.md.

Run against the local stack (``make stack-up``)::

    .venv/bin/python tests/replicas/frame_sizes.py [--frames 300000]

It writes the benchmark's realistic frames (``bench/workload.py``: one camera
source with preview and mask, four polygon ROIs, five metadata keys) as exactly
the revision documents the metadata service stores (``frame_to_document``)
into a scratch database with the service's own indexes (``db.INDEXES``),
prints ``collStats`` of the frames collection as JSON and drops the database.
The frames belong to one dataset and one version, the layout of one large
ingest; ``hidden_frames`` stays empty because nothing was deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

import bson
import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the tests folder's packages

from bench.workload import frame_document, make_frame  # noqa: E402

from framevault.metadata.db import FRAMES, INDEXES  # noqa: E402
from framevault.stack.local import stack_env  # noqa: E402

BATCH = 5_000


def measure(frames: int) -> dict[str, object]:
    env = stack_env()
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(env["FRAMEVAULT_MONGODB_URI"])
    name = f"fvsize_{uuid.uuid4().hex[:10]}"
    database = client[name]
    try:
        collection = database[FRAMES]
        collection.create_indexes(INDEXES[FRAMES])
        dataset_id, version_id = str(bson.ObjectId()), str(bson.ObjectId())
        sample = 0
        for start in range(0, frames, BATCH):
            docs = [frame_document(make_frame("drive", index), dataset_id=dataset_id, version_id=version_id)
                    for index in range(start, min(start + BATCH, frames))]
            collection.insert_many(docs, ordered=False)
            sample = sample or len(bson.encode(docs[0]))  # insert_many gave it its _id
        stats = database.command("collStats", FRAMES)
        return {
            "frames": stats["count"],
            "first_document_bson_bytes": sample,
            "avg_obj_size": stats["avgObjSize"],
            "data_size": stats["size"],
            "storage_size": stats["storageSize"],
            "total_index_size": stats["totalIndexSize"],
            "index_sizes": stats["indexSizes"],
            "block_compressor": "snappy (mongod default)",
        }
    finally:
        client.drop_database(name)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.frames), indent=2))


if __name__ == "__main__":
    main()
