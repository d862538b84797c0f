"""How each row P1–P7 is measured: the service side and its raw baseline, in the same run.

Every measurement runs in a client process of its own (``clients.py``);
service and raw runs of a row alternate (service first on even repeats, raw
first on odd ones) so a slow patch of the shared machine hits both. Values
are medians over the repeats; every single sample is kept in the JSON.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bson
import processes
import workload
from client_channels import channel
from pymongo import MongoClient
from pymongo.write_concern import WriteConcern
from report import REPORT_ONLY, Row, Target, median, percentile
from workload import format_bytes, format_count

from framevault.metadata.db import FRAMES, VERSIONS
from framevault.metadata.frame_documents import shuffle_key
from framevault.v1 import dataset_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

MB = 1_000_000
CHILDREN_PER_PARENT = 5
# Share of a child's frames overwritten before it is read (so the read meets hidden revisions).
CHILD_CHANGED_SHARE = 0.01
CHILD_CHANGED_MAX = 1000
P6_PROCESSES = 2
P6_CLIENTS = 16
P6_WARMUP_S = 1.0
P5_WARMUP_FRAMES = 2000
RAW_INSERT_BATCH = 1000
SEED_BATCH = 1000
BLOB_ROUND_BYTES = 64 * 1024 * 1024
BLOB_MAX_ROUNDS = 16


@dataclass
class Plan:
    """Sizes and counts of one run (from the command line)."""

    frames: int
    frames_per_message: int
    repeat: int
    blob_sizes: list[int]
    blob_chunk_size: int
    child_sizes: list[int]
    child_read_frames: int
    memory_frames: int
    latency_seconds: float


@dataclass
class Dataset:
    """A dataset made for the bench, with the version the rows work on."""

    id: str
    version_id: str
    prefix: str
    frames: int


@dataclass
class Bench:
    """What rows share: the plan, the stack, the running services and their stub."""

    plan: Plan
    env: dict[str, str]
    services: processes.Services
    s3_part_size: int
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def mongodb_uri(self) -> str:
        return self.env["FRAMEVAULT_MONGODB_URI"]

    @property
    def metadata_target(self) -> str:
        return self.services.metadata.address

    def stub(self) -> metadata_service_pb2_grpc.MetadataServiceStub:
        if "stub" not in self.cache:
            opened = channel(self.metadata_target)
            self.cache["channel"] = opened
            self.cache["stub"] = metadata_service_pb2_grpc.MetadataServiceStub(opened)
        return self.cache["stub"]

    def close(self) -> None:
        channel = self.cache.pop("channel", None)
        if channel is not None:
            channel.close()
        self.cache.clear()

    def mongo(self) -> MongoClient[dict[str, Any]]:
        if "mongo" not in self.cache:
            self.cache["mongo"] = MongoClient(self.mongodb_uri, w="majority", tz_aware=True)
        return self.cache["mongo"]

    # --- catalog -----------------------------------------------------------

    def new_dataset(self, label: str) -> tuple[str, str]:
        """A fresh dataset; returns its id and the id of its draft ``Current``."""
        stub = self.stub()
        dataset = stub.CreateDataset(ms.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(name=f"bench-{label}-{uuid.uuid4().hex[:8]}"), fail_if_exists=True),
            timeout=30)
        draft = stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
            dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")), timeout=30)
        return dataset.id, draft.id

    def upload(self, version_id: str, prefix: str, count: int, *, start: int = 0, prebuild: bool = True,
               revision: int = 0) -> dict[str, Any]:
        result = processes.run_client("upload", target=self.metadata_target, version_id=version_id, prefix=prefix,
                                      count=count, start=start, frames_per_message=self.plan.frames_per_message,
                                      prebuild=prebuild, revision=revision)
        if result["failed"] or result["frames"] != count:
            raise RuntimeError(f"upload registered {result['frames'] - result['failed']} of {count} frames: "
                               f"{result['errors']}")
        return result

    def uploaded_dataset(self) -> Dataset:
        """The dataset P2 and P6 read: the last one P1 wrote, or one uploaded now (not measured)."""
        if "uploaded" not in self.cache:
            dataset_id, version_id = self.new_dataset("read")
            self.upload(version_id, "f", self.plan.frames)
            self.cache["uploaded"] = Dataset(dataset_id, version_id, "f", self.plan.frames)
        return self.cache["uploaded"]


def _alternate(repeat: int, service: Callable[[], dict[str, Any]], raw: Callable[[], dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services, raws = [], []
    for n in range(repeat):
        if n % 2 == 0:
            services.append(service())
            raws.append(raw())
        else:
            raws.append(raw())
            services.append(service())
    return services, raws


def _rates(samples: list[dict[str, Any]]) -> list[float]:
    return [s["frames_per_s"] for s in samples]


def _with_service_cpu(bench: Bench, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``measure()``'s sample with the CPU time each service process spent per frame meanwhile:
    unlike frames per second it hardly moves with the load of the shared machine, so it shows
    what a change costs the service when throughput ratios are within noise."""
    before = {s.name: s.cpu_seconds() for s in bench.services.all()}
    sample = measure()
    for service in bench.services.all():
        spent = service.cpu_seconds() - before[service.name]
        sample[f"{service.name}_cpu_us_per_frame"] = spent * 1e6 / max(1, sample["frames"])
    return sample


def _cpu_per_frame(samples: list[dict[str, Any]]) -> float:
    return median([s["metadata_cpu_us_per_frame"] for s in samples])


# --- P1 / P7 ingest --------------------------------------------------------------


def measure_ingest(bench: Bench) -> dict[str, Any]:
    plan = bench.plan
    last: dict[str, Dataset] = {}

    def service() -> dict[str, Any]:
        dataset_id, version_id = bench.new_dataset("ingest")
        result = _with_service_cpu(bench, lambda: bench.upload(version_id, "f", plan.frames))
        last["dataset"] = Dataset(dataset_id, version_id, "f", plan.frames)
        return result

    def raw() -> dict[str, Any]:
        return processes.run_client("raw_insert", mongodb_uri=bench.mongodb_uri, database=processes.BENCH_DATABASE,
                                    prefix="f", count=plan.frames, batch=RAW_INSERT_BATCH,
                                    dataset_id=str(bson.ObjectId()), version_id=str(bson.ObjectId()))

    services, raws = _alternate(plan.repeat, service, raw)
    bench.cache["uploaded"] = last["dataset"]
    return {"service": median(_rates(services)), "raw": median(_rates(raws)),
            "metadata_cpu_us_per_frame": _cpu_per_frame(services),
            "client_cpu_us_per_frame": median([s["client_cpu_us_per_frame"] for s in services]),
            "service_samples": services, "raw_samples": raws}


def ingest_conditions(bench: Bench, measured: dict[str, Any]) -> str:
    plan = bench.plan
    window = measured["service_samples"][0]["window"]
    return (f"{format_count(plan.frames)} frames of {frame_size_text()} each into a new draft per repeat; "
            f"service: UploadFrames from 1 client process, {plan.frames_per_message} frames/message, "
            f"window {window} frames (server-advertised), requests encoded before the clock; "
            f"raw: insert_many(ordered=False) of the same documents, batches of {RAW_INSERT_BATCH}, "
            f"w=majority, into a fresh collection with the frames collection's indexes, from 1 process; "
            f"metadata driver {bench.services.driver}; metadata service CPU "
            f"{measured['metadata_cpu_us_per_frame']:.0f} µs/frame, client CPU "
            f"{measured['client_cpu_us_per_frame']:.0f} µs/frame; median of {plan.repeat}")


def frame_size_text() -> str:
    sizes = [workload.document_bytes(workload.make_frame("f", i)) for i in range(0, 3000, 97)]
    return f"~{sum(sizes) / len(sizes) / 1000:.2f} KB BSON"


def p1_rows(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    measured = measure_ingest(bench)
    row = Row("P1", "ingest frames/s: UploadFrames ÷ raw insert_many", "fr/s", measured["service"], measured["raw"],
              Target("ratio", ">=", 0.8), ingest_conditions(bench, measured), details=measured)
    return [row], measured


# --- P2 / P7 iterate --------------------------------------------------------------


def measure_iterate(bench: Bench) -> dict[str, Any]:
    data = bench.uploaded_dataset()

    def service() -> dict[str, Any]:
        return _with_service_cpu(bench, lambda: processes.run_client(
            "iterate", target=bench.metadata_target, version_id=data.version_id))

    def raw() -> dict[str, Any]:
        return processes.run_client("raw_cursor", mongodb_uri=bench.mongodb_uri, database=processes.BENCH_DATABASE,
                                    dataset_id=data.id, version_id=data.version_id)

    services, raws = _alternate(bench.plan.repeat, service, raw)
    for sample in services + raws:
        if sample["frames"] != data.frames:
            raise RuntimeError(f"read {sample['frames']} frames of {data.frames}")
    return {"service": median(_rates(services)), "raw": median(_rates(raws)),
            "metadata_cpu_us_per_frame": _cpu_per_frame(services),
            "service_samples": services, "raw_samples": raws}


def iterate_conditions(bench: Bench, measured: dict[str, Any]) -> str:
    messages = measured["service_samples"][0]["messages"]
    return (f"{format_count(bench.plan.frames)} frames of one version read whole in sequential order "
            f"(context, timestamp, id); service: IterateFrames, server default frames/message "
            f"({messages} messages), decoded to protos in 1 client process; raw: pymongo find(dataset, version)"
            f".sort(context_id, timestamp, frame_id) on the sequential_order index, read concern majority, "
            f"decoded to dicts in 1 client process; metadata driver {bench.services.driver}; "
            f"metadata service CPU {measured['metadata_cpu_us_per_frame']:.0f} µs/frame; "
            f"median of {bench.plan.repeat}")


def p2_rows(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    measured = measure_iterate(bench)
    row = Row("P2", "ordered iteration frames/s: IterateFrames ÷ raw sorted cursor", "fr/s", measured["service"],
              measured["raw"], Target("ratio", ">=", 0.8), iterate_conditions(bench, measured), details=measured)
    return [row], measured


# --- P3 blobs ---------------------------------------------------------------------


def p3_rows(bench: Bench) -> list[Row]:
    plan = bench.plan
    env = bench.env
    rows = []
    store_pids = list(processes.local.Stack().s3.pids().values())
    for size in plan.blob_sizes:
        # One round trip of a GiB-class blob already takes tens of seconds; repeat the small ones only.
        repeat = plan.repeat if size <= 256 * 1024 * 1024 else 1
        # Small blobs are timed over several round trips (up to BLOB_ROUND_BYTES moved), since one
        # takes only milliseconds.
        rounds = max(1, min(BLOB_MAX_ROUNDS, BLOB_ROUND_BYTES // size))
        samples = [processes.run_client(
            "blob_round_trip", target=bench.services.blob.address, endpoint=env["FRAMEVAULT_S3_ENDPOINT"],
            access_key=env["FRAMEVAULT_S3_ACCESS_KEY"], secret_key=env["FRAMEVAULT_S3_SECRET_KEY"],
            region=env.get("FRAMEVAULT_S3_REGION", "us-east-1"), bucket=processes.BENCH_BUCKET, size=size,
            rounds=rounds, chunk_size=plan.blob_chunk_size, part_size=bench.s3_part_size, service_first=n % 2 == 0,
            service_pids=[bench.services.blob.pid], store_pids=store_pids)
            for n in range(repeat)]
        label = format_bytes(size)
        mib = rounds * size / (1 << 20)

        def cpu(key: str, samples: list[dict[str, Any]] = samples, mib: float = mib) -> float:
            """Median CPU µs per MiB moved of ``key`` (``<side>_<direction>_<process>``)."""
            return median([s["cpu_s"][key] * 1e6 / mib for s in samples])

        conditions = (f"{rounds} blob{'s' if rounds > 1 else ''} of {label} fresh random bytes per repeat, after "
                      f"one 64 KiB warm-up blob per side; service: WriteBlob (requests encoded around each chunk) "
                      f"then ReadBlob, {format_bytes(plan.blob_chunk_size)} chunks, one channel, 1 client process; "
                      f"raw: minio put_object (part size {format_bytes(bench.s3_part_size)}, the service's; the SDK's "
                      f"default 3 parallel part uploads) then get_object streamed in "
                      f"{format_bytes(plan.blob_chunk_size)} reads, same process, same S3 server and bucket; median "
                      f"of {repeat}; CPU µs per MiB (blob service / client / S3 server; raw client / S3 server): "
                      + "; ".join(f"{d} {cpu(f'service_{d}_service'):.0f} / {cpu(f'service_{d}_client'):.0f} / "
                                  f"{cpu(f'service_{d}_store'):.0f}; raw {cpu(f'raw_{d}_client'):.0f} / "
                                  f"{cpu(f'raw_{d}_store'):.0f}" for d in ("write", "read")))
        for direction in ("write", "read"):
            service = median([rounds * size / MB / s[f"service_{direction}_s"] for s in samples])
            raw = median([rounds * size / MB / s[f"raw_{direction}_s"] for s in samples])
            rows.append(Row(f"P3.{direction}.{label}", f"blob {direction} MB/s {label}: "
                            f"{'WriteBlob ÷ put_object' if direction == 'write' else 'ReadBlob ÷ get_object'}",
                            "MB/s", service, raw, Target("ratio", ">=", 0.9), conditions,
                            details={"samples": samples,
                                     "blob_cpu_us_per_mib": cpu(f"service_{direction}_service"),
                                     "client_cpu_us_per_mib": cpu(f"service_{direction}_client"),
                                     "store_cpu_us_per_mib": cpu(f"service_{direction}_store"),
                                     "raw_client_cpu_us_per_mib": cpu(f"raw_{direction}_client"),
                                     "raw_store_cpu_us_per_mib": cpu(f"raw_{direction}_store")}))
    return rows


# --- P4 children ------------------------------------------------------------------


def seed_published_version(bench: Bench, count: int) -> Dataset:
    """A published root version holding ``count`` frames, written straight into the service's collection.

    Set-up only (the ingest path is P1's subject): documents are the service's
    exact layout (``frame_document``); to keep a million of them cheap,
    3000 distinct frames are built and repeated under new ids, contexts and
    timestamps. The version's frame count is set as the service would have.
    """
    prefix = "p"
    dataset_id, version_id = bench.new_dataset(f"parent-{format_count(count)}")
    templates = [workload.frame_document(f, dataset_id=dataset_id, version_id=version_id)
                 for f in workload.frames(prefix, min(count, 3000))]
    db = bench.mongo().get_database(processes.BENCH_DATABASE, write_concern=WriteConcern(w="majority"))
    batch: list[dict[str, Any]] = []
    for index in range(count):
        doc = dict(templates[index % len(templates)])
        frame_id = workload.frame_id(prefix, index)
        clip, position = divmod(index, workload.FRAMES_PER_CONTEXT)
        doc["frame_id"] = frame_id
        doc["context_id"] = f"{prefix}/c{clip:05d}"
        doc["timestamp"] = bson.Int64(position * workload.FRAME_INTERVAL_MS)
        doc["shuffle_key"] = bson.Int64(shuffle_key(frame_id))
        batch.append(doc)
        if len(batch) == SEED_BATCH:
            db[FRAMES].insert_many(batch, ordered=False)
            batch = []
    if batch:
        db[FRAMES].insert_many(batch, ordered=False)
    db[VERSIONS].update_one({"_id": version_id}, {"$set": {"frame_count": count}})
    bench.stub().PublishVersion(ms.PublishVersionRequest(version=dataset_pb2.VersionRef(id=version_id)), timeout=60)
    return Dataset(dataset_id, version_id, prefix, count)


def p4_rows(bench: Bench) -> list[Row]:
    plan = bench.plan
    stub = bench.stub()
    frames = bench.mongo()[processes.BENCH_DATABASE][FRAMES]
    rows = []
    for size in plan.child_sizes:
        label = format_count(size)
        started = time.perf_counter()
        parent = seed_published_version(bench, size)
        seed_seconds = time.perf_counter() - started
        before = frames.count_documents({"dataset_id": parent.id})
        create_ms: list[float] = []
        children = []
        for n in range(CHILDREN_PER_PARENT):
            request = ms.CreateVersionRequest(
                dataset=dataset_pb2.DatasetRef(id=parent.id), parent=dataset_pb2.VersionRef(id=parent.version_id),
                version=dataset_pb2.Version(name=f"child-{n}"))
            began = time.perf_counter()
            child = stub.CreateVersion(request, timeout=60)
            create_ms.append((time.perf_counter() - began) * 1000)
            children.append(child.id)
        written = frames.count_documents({"dataset_id": parent.id}) - before
        read_cap = min(size, plan.child_read_frames)
        changed = max(1, min(CHILD_CHANGED_MAX, int(read_cap * CHILD_CHANGED_SHARE)))
        # Overwrite a run of the child's frames (same ids) in the middle of what is read, so the
        # child read meets its own revisions and the parent revisions they hide.
        overwritten = bench.upload(children[0], parent.prefix, changed, start=(read_cap - changed) // 2,
                                   revision=1)
        if overwritten["updated"] != changed:
            raise RuntimeError(f"overwrote {overwritten['updated']} of {changed} child frames")
        max_frames = read_cap if read_cap < size else 0

        def read(version_id: str, max_frames: int = max_frames) -> Callable[[], dict[str, Any]]:
            return lambda: processes.run_client("iterate", target=bench.metadata_target, version_id=version_id,
                                                max_frames=max_frames)

        child_reads, flat_reads = _alternate(plan.repeat, read(children[0]), read(parent.version_id))
        child_s = median([s["seconds"] for s in child_reads])
        flat_s = median([s["seconds"] for s in flat_reads])
        common = (f"parent: published root version of {label} frames ({frame_size_text()}), seeded directly "
                  f"in {seed_seconds:.0f} s (not measured)")
        rows.append(Row(f"P4.create.{label}", f"create child of {label}-frame version: time", "ms",
                        median(create_ms), None, Target("service", "<=", 50, " ms"),
                        f"{common}; CreateVersion of {CHILDREN_PER_PARENT} children one after another from the "
                        f"harness process, median (max {max(create_ms):.1f} ms)",
                        details={"create_ms": create_ms, "seed_seconds": seed_seconds}))
        rows.append(Row(f"P4.docs.{label}", f"create child of {label}-frame version: frame docs written", "docs",
                        float(written), None, Target("service", "==", 0),
                        f"{common}; frame documents of the dataset counted before and after creating "
                        f"{CHILDREN_PER_PARENT} children"))
        rows.append(Row(f"P4.read.{label}", f"child read ÷ flat read, {label}-frame version (time)", "s",
                        child_s, flat_s, Target("ratio", "<=", 1.2),
                        f"{common}; child = first child with {changed} frames overwritten; both read through "
                        f"IterateFrames, sequential order, "
                        f"{'whole version' if read_cap >= size else f'first {format_count(read_cap)} frames'}, "
                        f"1 client process; raw baseline = the flat (parent) read; median of {plan.repeat}",
                        details={"child_reads": child_reads, "flat_reads": flat_reads}))
    return rows


# --- P5 memory --------------------------------------------------------------------


def p5_rows(bench: Bench) -> list[Row]:
    plan = bench.plan
    services = bench.services
    dataset_id, version_id = bench.new_dataset("memory")
    # Warm-up: pools, caches and lazily imported code are in place before the baseline.
    bench.upload(version_id, "m", P5_WARMUP_FRAMES, prebuild=False)
    processes.run_client("iterate", target=bench.metadata_target, version_id=version_id)
    time.sleep(1.0)
    baseline = {s.name: s.rss_bytes() for s in services.all()}
    phases: dict[str, float] = {}
    with processes.RssSampler(services) as sampler:
        started = time.perf_counter()
        upload = bench.upload(version_id, "m", plan.memory_frames, start=P5_WARMUP_FRAMES, prebuild=False)
        phases["in_end_s"] = time.perf_counter() - started
        read = processes.run_client("iterate", target=bench.metadata_target, version_id=version_id)
        phases["out_end_s"] = time.perf_counter() - started
    if read["frames"] != plan.memory_frames + P5_WARMUP_FRAMES:
        raise RuntimeError(f"read back {read['frames']} frames of {plan.memory_frames + P5_WARMUP_FRAMES}")
    end = {s.name: s.rss_bytes() for s in services.all()}
    rows = []
    for index, name in ((1, "metadata"), (2, "blob")):
        peak = max(sample[index] for sample in sampler.samples)
        growth = (peak - baseline[name]) / MB
        rows.append(Row(
            f"P5.{name}", f"{name} service RSS growth streaming {format_count(plan.memory_frames)} frames in, then out",
            "MB", growth, None, Target("service", "<=", 100, " MB"),
            f"peak RSS minus RSS after a {P5_WARMUP_FRAMES}-frame warm-up, sampled every 0.1 s with psutil; "
            f"fresh service processes; {format_count(plan.memory_frames)} frames uploaded through 1 UploadFrames "
            f"stream ({plan.frames_per_message} frames/message, frames built as sent) in "
            f"{phases['in_end_s']:.0f} s, then all read through 1 IterateFrames stream in "
            f"{phases['out_end_s'] - phases['in_end_s']:.0f} s; baseline {baseline[name] / MB:.0f} MB, "
            f"peak {peak / MB:.0f} MB, after {end[name] / MB:.0f} MB",
            details={"baseline_bytes": baseline[name], "peak_bytes": peak, "end_bytes": end[name],
                     "upload_frames_per_s": upload["frames_per_s"], "read_frames_per_s": read["frames_per_s"],
                     "samples": [(round(t, 2), m, b) for t, m, b in sampler.samples[::10]]}))
    bench.cache["memory_dataset"] = dataset_id
    return rows


# --- P6 latency -------------------------------------------------------------------


def p6_rows(bench: Bench) -> list[Row]:
    plan = bench.plan
    data = bench.uploaded_dataset()
    per_process = P6_CLIENTS // P6_PROCESSES

    def run(job: str, **params: Any) -> tuple[list[float], float, int]:
        start_at = time.time() + 2.0
        workers = processes.start_clients(job, P6_PROCESSES, prefix=data.prefix, frame_count=data.frames,
                                          concurrency=per_process, start_at=start_at, warmup_s=P6_WARMUP_S,
                                          measure_s=plan.latency_seconds, **params)
        results = processes.collect_clients(workers)
        latencies = [ms_ for result in results for ms_ in result["latencies_ms"]]
        calls = sum(result.get("calls", len(result["latencies_ms"])) for result in results)
        return latencies, len(latencies) / plan.latency_seconds, calls

    cpu_before = bench.services.metadata.cpu_seconds()
    service, service_rate, service_calls = run("get_frame_latency", target=bench.metadata_target,
                                               version_id=data.version_id)
    # Per call, warm-up included (the service's CPU time covers it too).
    cpu_per_call = (bench.services.metadata.cpu_seconds() - cpu_before) * 1e6 / max(1, service_calls)
    raw, raw_rate, _ = run("raw_get_latency", mongodb_uri=bench.mongodb_uri, database=processes.BENCH_DATABASE,
                           dataset_id=data.id, version_id=data.version_id)
    conditions = (f"{P6_CLIENTS} closed-loop clients ({P6_PROCESSES} processes × {per_process}), random frame of "
                  f"a {format_count(data.frames)}-frame version, {P6_WARMUP_S:.0f} s warm-up then "
                  f"{plan.latency_seconds:.0f} s measured; service: GetFrame, one channel per client "
                  f"({service_rate:,.0f} calls/s, metadata service CPU {cpu_per_call:.0f} µs/call); raw: "
                  f"pymongo find_one(dataset, frame id, version) from {per_process} threads per process "
                  f"({raw_rate:,.0f} calls/s)")
    details = {"service_calls": len(service), "raw_calls": len(raw), "service_calls_per_s": service_rate,
               "raw_calls_per_s": raw_rate}
    # ab.py reports it once, with the p50 row.
    cpu = {"metadata_cpu_us_per_frame": cpu_per_call}
    return [
        Row("P6.p50", "GetFrame latency p50, 16 concurrent clients", "ms", percentile(service, 0.5),
            percentile(raw, 0.5), REPORT_ONLY, conditions, details={**details, **cpu}),
        # Judged against the raw p99 of the same run: on a 2-core machine shared with the clients
        # and mongod, the raw tail itself is several milliseconds of queueing.
        Row("P6.p99", "GetFrame latency p99, 16 concurrent clients", "ms", percentile(service, 0.99),
            percentile(raw, 0.99), Target("ratio", "<=", 1.5), conditions, details=details),
    ]


# --- P7 drivers -------------------------------------------------------------------


def p7_rows(bench: Bench, motor: dict[str, dict[str, Any]]) -> list[Row]:
    """P1 and P2 again with the metadata service on ``pymongo.AsyncMongoClient``.

    ``motor`` holds the P1/P2 measurements of the same run (motor driver).
    """
    rows = []
    for key, label, measure, conditions in (
        ("ingest", "ingest", measure_ingest, ingest_conditions),
        ("iterate", "ordered iteration", measure_iterate, iterate_conditions),
    ):
        measured = measure(bench)
        rows.append(Row(f"P7.{key}.pymongo", f"{label} frames/s, pymongo.AsyncMongoClient ÷ raw", "fr/s",
                        measured["service"], measured["raw"], REPORT_ONLY, conditions(bench, measured),
                        details=measured))
        baseline = motor.get(key)
        if baseline is not None:
            rows.append(Row(f"P7.{key}.vs-motor", f"{label} frames/s, pymongo.AsyncMongoClient ÷ motor", "fr/s",
                            measured["service"], baseline["service"], REPORT_ONLY,
                            f"service values of P7.{key}.pymongo and of {'P1' if key == 'ingest' else 'P2'} "
                            f"(motor), same run, same workload"))
    return rows
