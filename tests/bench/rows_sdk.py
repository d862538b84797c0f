"""Row P9: the Python SDK as a user calls it ÷ the raw baselines of the same run.

Harness side: :func:`p9_rows`. Client side: ``python rows_sdk.py JOB '<json params>'``
(its own process, like every measurement). Three sides take turns per repeat:

- **ingest**: the SDK: N ``SingleFrame`` objects built through the public API
  (source, preview, mask, four polygon annotations, five metadata keys: the
  shape of ``workload.make_frame``, proto for proto) before the clock starts,
  then one synchronous ``DatasetVersion.add_frames`` call into a new dataset's
  draft, as a script calls it; the generated stubs: P1's ``upload`` job; raw:
  P1's ``raw_insert`` job;
- **iterate**: the SDK: ``DataView.get_iterator()`` over the last SDK-ingested
  draft in sequential order, synchronous, reading each frame's id, source URI
  and its annotations' labels and geometry (what a loader loop looks at); the
  generated stubs: P2's ``iterate`` job; raw: P2's ``raw_cursor`` job, all
  over the same version.

``P9.ingest`` and ``P9.iterate`` are the SDK ÷ raw; the ``vs-stubs`` rows the
SDK ÷ the stubs, i.e. what the SDK itself costs. SDK samples carry the CPU
time of the client process and of each service process per frame. With
``--services-dir`` the client process imports the SDK (``clients/python``)
of that checkout too, so ``ab.py`` compares SDK trees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import workload

if TYPE_CHECKING:
    from report import Row
    from rows import Bench

# The client process imports only what it runs (the workload and the SDK): the harness modules follow
# the checkout running the harness, which may need more of the API package than the SDK under test has.
BENCH_DIR = Path(__file__).resolve().parent
TARGET_RATIO = 0.6


def p9_rows(bench: Bench, services_dir: Path | None = None) -> list[Row]:
    import bson
    import processes
    from report import REPORT_ONLY, Row, Target, median
    from rows import RAW_INSERT_BATCH, _with_service_cpu
    from workload import format_count

    plan = bench.plan
    ingests: list[dict[str, Any]] = []

    def sdk_ingest() -> dict[str, Any]:
        sample = _with_service_cpu(bench, lambda: run_client(
            "ingest", services_dir, metadata_target=bench.services.metadata.address,
            blob_target=bench.services.blob.address, prefix="u", count=plan.frames))
        ingests.append(sample)
        return sample

    def stub_ingest() -> dict[str, Any]:
        _, version_id = bench.new_dataset("sdk-stubs")
        return _with_service_cpu(bench, lambda: bench.upload(version_id, "u", plan.frames))

    def raw_insert() -> dict[str, Any]:
        return processes.run_client("raw_insert", mongodb_uri=bench.mongodb_uri, database=processes.BENCH_DATABASE,
                                    prefix="u", count=plan.frames, batch=RAW_INSERT_BATCH,
                                    dataset_id=str(bson.ObjectId()), version_id=str(bson.ObjectId()))

    ingest = _rotate(plan.repeat, sdk_ingest, stub_ingest, raw_insert)
    read = ingests[-1]

    def sdk_iterate() -> dict[str, Any]:
        return _with_service_cpu(bench, lambda: run_client(
            "iterate", services_dir, metadata_target=bench.services.metadata.address,
            blob_target=bench.services.blob.address, dataset_name=read["dataset_name"]))

    def stub_iterate() -> dict[str, Any]:
        return _with_service_cpu(bench, lambda: processes.run_client(
            "iterate", target=bench.metadata_target, version_id=read["version_id"]))

    def raw_cursor() -> dict[str, Any]:
        return processes.run_client("raw_cursor", mongodb_uri=bench.mongodb_uri, database=processes.BENCH_DATABASE,
                                    dataset_id=read["dataset_id"], version_id=read["version_id"])

    iterate = _rotate(plan.repeat, sdk_iterate, stub_iterate, raw_cursor)
    for sample in iterate[0] + iterate[1] + iterate[2]:
        if sample["frames"] != plan.frames:
            raise RuntimeError(f"read {sample['frames']} frames of {plan.frames}")
    sdk_tree = f"the SDK of {services_dir.resolve().parent}" if services_dir else "the installed SDK"
    common = (f"{format_count(plan.frames)} frames of the P1 shape; SDK: 1 client process using {sdk_tree} "
              f"synchronously, default ClientSettings; median of {plan.repeat}, the three sides taking turns")
    rows = []
    for row_id, what, (sdk, stubs, raw), conditions in (
        ("P9.ingest", "SDK add_frames", ingest,
         "SDK: SingleFrame objects built through the public API before the clock, then one "
         "DatasetVersion.add_frames into a new draft per repeat; stubs and raw: as P1"),
        ("P9.iterate", "SDK DataView.get_iterator()", iterate,
         "SDK: DataView.get_iterator() over the last SDK-ingested draft, sequential order, reading each frame's "
         "id, source, annotation labels and geometry; stubs and raw: as P2 over the same version"),
    ):
        details = {
            "metadata_cpu_us_per_frame": median([s["metadata_cpu_us_per_frame"] for s in sdk]),
            "client_cpu_us_per_frame": median([s["client_cpu_us_per_frame"] for s in sdk]),
            "stubs_metadata_cpu_us_per_frame": median([s["metadata_cpu_us_per_frame"] for s in stubs]),
            "service_samples": sdk, "stub_samples": stubs, "raw_samples": raw,
        }
        sdk_rate = median([s["frames_per_s"] for s in sdk])
        full = (f"{conditions}; {common}; SDK client CPU {details['client_cpu_us_per_frame']:.0f} µs/frame, "
                f"metadata service CPU {details['metadata_cpu_us_per_frame']:.0f} µs/frame "
                f"({details['stubs_metadata_cpu_us_per_frame']:.0f} for the stub client)")
        rows.append(Row(row_id, f"{what} frames/s ÷ raw {'insert_many' if row_id.endswith('ingest') else 'sorted cursor'}",
                        "fr/s", sdk_rate, median([s["frames_per_s"] for s in raw]),
                        Target("ratio", ">=", TARGET_RATIO), full, details=details))
        rows.append(Row(f"{row_id}.vs-stubs", f"{what} frames/s ÷ the generated stubs (P{1 if 'ingest' in row_id else 2}'s client)",
                        "fr/s", sdk_rate, median([s["frames_per_s"] for s in stubs]), REPORT_ONLY,
                        f"the SDK values of {row_id} and the stub client's of the same run: what the SDK adds"))
    return rows


def _rotate(repeat: int, *sides: Callable[[], dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``repeat`` samples of each side, the side going first moving on every repeat (as rows._alternate does
    for two), so a slow patch of the shared machine hits every side."""
    samples: list[list[dict[str, Any]]] = [[] for _ in sides]
    for n in range(repeat):
        for k in range(len(sides)):
            index = (n + k) % len(sides)
            samples[index].append(sides[index]())
    return samples


def run_client(job: str, services_dir: Path | None, **params: Any) -> dict[str, Any]:
    """One job of this module in a process of its own, importing the SDK of ``services_dir``'s checkout if given."""
    argv = client_argv(__file__, job, services_dir, params)
    completed = subprocess.run(argv, cwd=BENCH_DIR, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"SDK client job {job} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def client_argv(script: str, job: str, services_dir: Path | None, params: dict[str, Any]) -> list[str]:
    """The command running ``script JOB '<json params>'``, with the SDK of ``services_dir``'s checkout if given."""
    import processes

    if services_dir is None:
        argv = [sys.executable, script, job, json.dumps(params)]
    else:
        checkout = services_dir.resolve().parent
        # The SDK under test comes from the checkout; the stack tooling the bench modules import, from here.
        paths = [str(p) for p in processes.checkout_paths(services_dir)] + [
            str(checkout / "clients" / "python"), str(processes.REPO / "deploy" / "local")]
        # The checkout's packages must win over the editable install of this one.
        bootstrap = (f"import sys, runpy; sys.meta_path[:] = [f for f in sys.meta_path "
                     f"if 'editable' not in repr(f)]; sys.path[:0] = {paths!r}; "
                     f"sys.argv = [{script!r}, {job!r}, {json.dumps(params)!r}]; "
                     f"runpy.run_path({script!r}, run_name='__main__')")
        argv = [sys.executable, "-c", bootstrap]
    return argv


# --- client process ------------------------------------------------------------------


def sdk_frame(prefix: str, index: int) -> Any:
    """``workload.make_frame(prefix, index)`` built as a user builds it: a ``SingleFrame`` and its annotations."""
    from framevault.sdk import SingleFrame

    proto = workload.make_frame(prefix, index)
    source = proto.sources[0]
    frame = SingleFrame(
        source=source.uri, width=source.width, height=source.height, timestamp=proto.timestamp,
        context_id=proto.context_id, preview_uri=source.preview.uri,
        metadata={key: getattr(value, value.WhichOneof("kind")) for key, value in proto.meta.fields.items()},
        mask_source={mask.id: mask.uri for mask in source.masks}, id=proto.id, content_type=source.content_type,
    )
    for roi in proto.rois:
        frame.add_annotation(poly2d_xy=list(roi.polygon.parts[0].xy), labels=list(roi.labels),
                             confidence=roi.confidence)
    return frame


def _configure(metadata_target: str, blob_target: str) -> None:
    """The SDK pointed at the phase's services: with the TLS files and token ``clients_of`` put in the
    environment when they serve TLS, else in plaintext."""
    from framevault.sdk import configure

    configure(metadata_target=metadata_target, blob_target=blob_target,
              plaintext=not os.environ.get("FRAMEVAULT_CA_FILE"))


def _timed(work: Any) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ingest(metadata_target: str, blob_target: str, prefix: str, count: int) -> dict[str, Any]:
    from framevault.sdk import DatasetVersion

    _configure(metadata_target, blob_target)
    name = f"bench-sdk-{uuid.uuid4().hex[:8]}"
    DatasetVersion.create_new_dataset(name)
    draft = DatasetVersion.get_version(name)
    frames = [sdk_frame(prefix, index) for index in range(count)]
    failed, seconds, cpu = _timed(lambda: draft.add_frames(frames, progress=False))
    if failed:
        raise RuntimeError(f"{len(failed)} frames were not added: {failed[0].error}")
    return {"frames": count, "seconds": seconds, "frames_per_s": count / seconds,
            "client_cpu_us_per_frame": cpu * 1e6 / count, "dataset_name": name,
            "dataset_id": draft.dataset_id, "version_id": draft.version_id}


def iterate(metadata_target: str, blob_target: str, dataset_name: str) -> dict[str, Any]:
    from framevault.sdk import DataView

    _configure(metadata_target, blob_target)
    view = DataView()
    view.add_query(dataset_name=dataset_name)

    def read() -> int:
        count = 0
        for frame in view.get_iterator():
            if frame.id and frame.source:
                count += 1
            for annotation in frame.annotations:
                if not (annotation.labels and annotation.geometry_kind):
                    raise RuntimeError(f"frame {frame.id}: an annotation without labels or geometry")
        return count

    count, seconds, cpu = _timed(read)
    return {"frames": count, "seconds": seconds, "frames_per_s": count / seconds,
            "client_cpu_us_per_frame": cpu * 1e6 / max(1, count)}


JOBS = {"ingest": ingest, "iterate": iterate}

if __name__ == "__main__":
    print(json.dumps(JOBS[sys.argv[1]](**json.loads(sys.argv[2]))))
