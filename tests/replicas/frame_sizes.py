"""Measures what frames cost in MongoDB: document size, storage and every index, for docs/SCALING.md.

Run against the local stack (``make stack-up``)::

    cd tests && ../.venv/bin/python -m replicas.frame_sizes [--frames 300000] [--layout current|sharded]

(run as a module from the tests folder, so its packages import as they do under pytest)

It writes the benchmark's realistic frames (``bench/workload.py``: one camera
source with preview and mask, four polygon ROIs, five metadata keys) as exactly
the revision documents the metadata service stores (``frame_document``)
into a scratch database with the service's own indexes (``db.INDEXES``),
prints ``collStats`` of the frames collection as JSON and drops the database.
The frames belong to one dataset and one version, the layout of one large
ingest; ``hidden_frames`` stays empty because nothing was deleted.

``--layout sharded`` builds instead the indexes docs/SCALING.md proposes for a
collection sharded on ``{dataset_id: 1, shuffle_key: 1}`` (``SHARDED_INDEXES``).
"""

from __future__ import annotations

import argparse
import json
import uuid

import bson
import pymongo
from bench.workload import frame_document, make_frame
from pymongo import ASCENDING, IndexModel

from framevault.metadata.db import FRAMES, INDEXES
from framevault.stack.local import stack_env

BATCH = 5_000

# The frames indexes of docs/SCALING.md, "Indexes that follow the shard key": each starts with the shard key
# or its dataset_id prefix, so every one of them can be unique or targeted.
SHARDED_INDEXES = [
    IndexModel([("dataset_id", ASCENDING), ("shuffle_key", ASCENDING), ("frame_id", ASCENDING),
                ("version_id", ASCENDING)], name="frame_key_unique", unique=True),
    IndexModel([("dataset_id", ASCENDING), ("version_id", ASCENDING), ("frame_id", ASCENDING)],
               name="version_frames"),
    IndexModel([("dataset_id", ASCENDING), ("context_id", ASCENDING), ("timestamp", ASCENDING),
                ("frame_id", ASCENDING)], name="sequential_order"),
    IndexModel([("dataset_id", ASCENDING), ("hidden_in", ASCENDING), ("frame_id", ASCENDING)],
               name="hidden_frames", partialFilterExpression={"hidden_in": {"$exists": True}}),
]
LAYOUTS = {"current": INDEXES[FRAMES], "sharded": SHARDED_INDEXES}


def measure(frames: int, indexes: list[IndexModel]) -> dict[str, object]:
    env = stack_env()
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(env["FRAMEVAULT_MONGODB_URI"])
    name = f"fvsize_{uuid.uuid4().hex[:10]}"
    database = client[name]
    try:
        collection = database[FRAMES]
        collection.create_indexes(indexes)
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
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="current")
    args = parser.parse_args()
    print(json.dumps({"layout": args.layout, **measure(args.frames, LAYOUTS[args.layout])}, indent=2))


if __name__ == "__main__":
    main()
