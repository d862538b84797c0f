"""Row P3.direct: the SDK's direct transfers (presigned part PUTs and ranged GETs straight to the
S3 store) ÷ direct ``minio`` put/get of the same run.

Harness side: :func:`p3_direct_rows`. Client side: ``python rows_blob_direct.py JOB '<json params>'``
(a process of its own, like every measurement). Per blob size and repeat, three sides take turns:

- **sdk**: ``BlobTransfer.upload_file`` of a fresh random file (hashing included, as a user calls
  it, by a client already connected to the services; up to the service's ``blob_direct_single_put_max_bytes`` one PUT whose signed sha256 the store
  checks, larger blobs in parts the service verifies before they become visible), then
  ``BlobTransfer.read_to_file`` (parallel ranges written into a hidden file piece by piece as they
  arrive and hashed in order while later pieces arrive, sha256 checked before the file appears);
- **streams**: the same client with direct transfers off (``BlobClient`` over WriteBlob / ReadBlob),
  for what the direct path saves (report only);
- **raw**: ``minio`` ``fput_object`` of the same file (the service's part size, the SDK's default 3
  parallel part uploads) and ``fget_object`` into a file.

Both read sides write the blob into a file on the same disk. ``fget_object`` does not check what it
received; the SDK checks sha256 and size before the file appears, which costs a core ~0.87 ms per MiB
here (hashlib's sha256 with SHA-NI), so a report-only row also divides by ``fget_object`` followed by a sha256 of the file (what a
caller of minio who needs the same guarantee does). Each side reports its process's CPU time per MiB
(``client_cpu_us_per_mib``; all threads, hashing included).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import processes
from report import REPORT_ONLY, Row, Target, median
from rows import Bench
from rows_sdk import _configure, _rotate, client_argv
from workload import format_bytes

TARGET_RATIO = 0.9
SIZES = (64 * 1024 * 1024, 1024 * 1024 * 1024)
# Sizes of the harness's --blob-sizes measured here: the service's default direct_transfer_min_size_bytes.
MIN_SIZE = 8 * 1024 * 1024
MB = 1e6
MIB = 1024 * 1024


def p3_direct_rows(bench: Bench, sizes: tuple[int, ...] = SIZES, services_dir: Path | None = None) -> list[Row]:
    """The rows; ``services_dir`` (the harness's ``--services-dir``): the client sides use the SDK of that
    checkout, so an A/B run compares client changes too."""
    env = bench.env
    rows: list[Row] = []
    for size in sizes:
        repeat = bench.plan.repeat if size <= 256 * 1024 * 1024 else 1
        common = {"size": size, "part_size": bench.s3_part_size}

        def side(job: str, common: dict[str, int] = common) -> Any:
            return lambda: run_client(job, services_dir, metadata_target=bench.services.metadata.address,
                                      blob_target=bench.services.blob.address,
                                      endpoint=env["FRAMEVAULT_S3_ENDPOINT"],
                                      access_key=env["FRAMEVAULT_S3_ACCESS_KEY"],
                                      secret_key=env["FRAMEVAULT_S3_SECRET_KEY"],
                                      region=env.get("FRAMEVAULT_S3_REGION", "us-east-1"),
                                      bucket=processes.BENCH_BUCKET, **common)

        sdk, streams, raw = _rotate(repeat, side("sdk"), side("streams"), side("raw"))
        label = format_bytes(size)
        conditions = (f"one fresh random {label} file per side and repeat, on local disk; SDK (its channels "
                      f"connected before the clock starts): BlobTransfer.upload_file (sha256 hashed first; one checked PUT up to the service's "
                      f"blob_direct_single_put_max_bytes, else parts of {format_bytes(bench.s3_part_size)}) then "
                      f"read_to_file (sha256 checked), default ClientSettings; raw: minio fput_object "
                      f"(same part size, 3 parallel part uploads) then fget_object; same S3 server and bucket; "
                      f"median of {repeat}, the three sides taking turns")
        for direction in ("write", "read"):
            key = f"{direction}_s"
            sdk_rate = median([size / MB / s[key] for s in sdk])
            cpu = {name: median([s[f"{direction}_cpu_s"] * 1e6 / (size / MIB) for s in side])
                   for name, side in (("sdk", sdk), ("raw", raw))}
            rows.append(Row(f"P3.direct.{direction}.{label}",
                            f"SDK direct blob {direction} MB/s {label} ÷ minio "
                            f"{'fput_object' if direction == 'write' else 'fget_object'}",
                            "MB/s", sdk_rate, median([size / MB / s[key] for s in raw]),
                            Target("ratio", ">=", TARGET_RATIO), conditions,
                            details={"client_cpu_us_per_mib": cpu["sdk"], "raw_client_cpu_us_per_mib": cpu["raw"],
                                     "sdk": sdk, "streams": streams, "raw": raw}))
            if direction == "read":
                rows.append(Row(f"P3.direct.read.{label}.vs-verified-raw",
                                f"SDK direct blob read {label} ÷ minio fget_object then sha256 of the file",
                                "MB/s", sdk_rate, median([size / MB / (s["read_s"] + s["verify_s"]) for s in raw]),
                                REPORT_ONLY, f"the values of P3.direct.read.{label}; the raw side's time "
                                "adds hashlib's sha256 of the file it read (the check the SDK makes)"))
            rows.append(Row(f"P3.direct.{direction}.{label}.vs-streams",
                            f"SDK direct blob {direction} {label} ÷ the same SDK over the gRPC streams",
                            "MB/s", sdk_rate, median([size / MB / s[key] for s in streams]), REPORT_ONLY,
                            f"the SDK values of P3.direct.{direction}.{label} and BlobClient over "
                            "WriteBlob/ReadBlob of the same run"))
    return rows


def run_client(job: str, services_dir: Path | None, **params: Any) -> dict[str, Any]:
    """One job of this module in a process of its own (under ``py-spy record`` when
    ``FRAMEVAULT_BENCH_CLIENT_PROFILE`` names a folder: one raw profile per job there)."""
    import subprocess

    argv = client_argv(__file__, job, services_dir, params)
    profiles = os.environ.get("FRAMEVAULT_BENCH_CLIENT_PROFILE")
    if profiles:
        Path(profiles).mkdir(parents=True, exist_ok=True)
        output = Path(profiles) / f"{job}-{format_bytes(params['size'])}-{uuid.uuid4().hex[:6]}.txt"
        argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "200",
                "--threads", "--idle", "-o", str(output), "--", *argv]
    completed = subprocess.run(argv, cwd=processes.BENCH_DIR, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"direct blob job {job} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    # The job's answer is its last JSON line (py-spy, when it runs the job, prints after it).
    answer = [line for line in completed.stdout.splitlines() if line.startswith("{")][-1]
    return dict(json.loads(answer))


# --- client process ------------------------------------------------------------------


def _fresh_file(directory: Path, size: int) -> Path:
    path = directory / f"blob-{uuid.uuid4().hex}"
    with path.open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(left, 16 * 1024 * 1024))
            out.write(piece)
            left -= len(piece)
    return path


def _sdk(metadata_target: str, blob_target: str, size: int, direct: bool, **_: Any) -> dict[str, Any]:
    from framevault.api.blob_client import BlobClient
    from framevault.sdk.blobs import BlobTransfer, digest_file
    from framevault.sdk.runtime import current_client

    _configure(metadata_target, blob_target)

    async def run(directory: Path) -> dict[str, Any]:
        client = current_client()
        transfer = BlobTransfer(client, progress=False)
        # Connected (TLS handshake, the key checked once) before the clock starts, as the raw side's
        # client is made before its clock: the rows time transfers, not a process's first call.
        caps = await client.capabilities()
        if not direct:
            # An SDK older than encoded WriteBlob requests (the A side of an A/B) has no write_blob.
            encoded = {"write_blob": client.write_blob_encoded} if hasattr(client, "write_blob_encoded") else {}
            transfer._blob_client = BlobClient(client.blob, chunk_size=int(caps.preferred_chunk_size_bytes),
                                               timeout=None, **encoded)
        path = _fresh_file(directory, size)
        started, cpu = time.perf_counter(), _cpu_s()
        digest = await transfer.upload_file(str(path))
        write_s, write_cpu_s = time.perf_counter() - started, _cpu_s() - cpu
        path.unlink()
        started, cpu = time.perf_counter(), _cpu_s()
        await transfer.read_to_file(digest, directory / "read")
        read_s, read_cpu_s = time.perf_counter() - started, _cpu_s() - cpu
        assert await digest_file(str(directory / "read")) == digest
        used = await transfer.blob_client()
        result = {"write_s": write_s, "read_s": read_s, "write_cpu_s": write_cpu_s, "read_cpu_s": read_cpu_s,
                  "direct_transfers": used.direct_transfers, "fallbacks": used.fallbacks}
        await client.blob.DeleteBlobs(_delete_request(digest))
        return result

    with tempfile.TemporaryDirectory(prefix="bench-direct-") as directory:
        return asyncio.run(run(Path(directory)))


def _delete_request(digest: Any) -> Any:
    from framevault.v1 import blob_pb2

    return blob_pb2.DeleteBlobsRequest(digests=[blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size)])


def _raw(endpoint: str, access_key: str, secret_key: str, region: str, bucket: str, size: int, part_size: int,
         **_: Any) -> dict[str, Any]:
    from minio import Minio

    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False, region=region)
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as directory:
        path = _fresh_file(Path(directory), size)
        key = f"bench-raw/{uuid.uuid4()}"
        started, cpu = time.perf_counter(), _cpu_s()
        client.fput_object(bucket, key, str(path), part_size=part_size, num_parallel_uploads=3)
        write_s, write_cpu_s = time.perf_counter() - started, _cpu_s() - cpu
        path.unlink()
        started, cpu = time.perf_counter(), _cpu_s()
        client.fget_object(bucket, key, str(Path(directory) / "read"))
        read_s, read_cpu_s = time.perf_counter() - started, _cpu_s() - cpu
        started = time.perf_counter()
        with (Path(directory) / "read").open("rb") as read:
            hashlib.file_digest(read, "sha256")
        verify_s = time.perf_counter() - started
        client.remove_object(bucket, key)
    return {"write_s": write_s, "read_s": read_s, "verify_s": verify_s, "write_cpu_s": write_cpu_s,
            "read_cpu_s": read_cpu_s}


def _cpu_s() -> float:
    """CPU seconds of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    job, raw_params = sys.argv[1], json.loads(sys.argv[2])
    if job == "raw":
        out = _raw(**raw_params)
    else:
        out = _sdk(direct=job == "sdk", **raw_params)
    print(json.dumps(out))
