"""Rows of scale and security: P8 (a second metadata replica) and P10 (what TLS and authentication cost).

P8 runs two metadata replicas (one database, one blob service) for the whole
row and alternates, repeat by repeat, one client process streaming to one
replica with two client processes streaming at once, one to each replica. Two
streams are timed together from the first one's start to the last one's end
(wall clock of the client processes), so the aggregate rate counts the time
they overlap and the time either ran alone.

P10 compares the main rows measured by a phase whose services serve mutual
TLS and check a bearer token on every call with the same rows of a phase with
security off, in the same run (see ``p10_rows``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import processes
from report import REPORT_ONLY, Row, median
from rows import Bench, _alternate
from workload import format_count

P8_REPLICAS = 2
# The rows P10 compares (their ids as the main phase produces them) and whether lower values are better.
P10_ROWS = ("P1", "P2", "P3.write", "P3.read", "P6.p50", "P6.p99")
# Row-id prefixes whose value is a time (lower is better): their P10 ratio is off ÷ on, so that
# for every P10 row 1.0 means "free" and 0.8 means "security costs 20 %".
LOWER_IS_BETTER = ("P6",)


def _together(job: str, per_client: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs one client process per entry of ``per_client`` at once; their results in that order."""
    started = [subprocess.Popen([sys.executable, str(processes.CLIENTS_SCRIPT), job, json.dumps(params)],
                                cwd=processes.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for params in per_client]
    return processes.collect_clients(started)


def _aggregate(bench: Bench, run: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """Frames per second of client processes taken together, and the metadata replicas' CPU per frame."""
    replicas = bench.services.metadata_replicas
    before = [r.cpu_seconds() for r in replicas]
    results = run()
    spent = sum(r.cpu_seconds() - b for r, b in zip(replicas, before, strict=True))
    frames = sum(r["frames"] for r in results)
    seconds = max(r["finished_at"] for r in results) - min(r["started_at"] for r in results)
    return {"frames": frames, "seconds": seconds, "frames_per_s": frames / seconds, "streams": len(results),
            "stream_frames_per_s": [r["frames_per_s"] for r in results],
            "metadata_cpu_us_per_frame": spent * 1e6 / max(1, frames)}


def _measured(two: list[dict[str, Any]], one: list[dict[str, Any]]) -> dict[str, Any]:
    return {"service": median([s["frames_per_s"] for s in two]), "raw": median([s["frames_per_s"] for s in one]),
            "two_cpu_us_per_frame": median([s["metadata_cpu_us_per_frame"] for s in two]),
            "one_cpu_us_per_frame": median([s["metadata_cpu_us_per_frame"] for s in one]),
            "two_samples": two, "one_samples": one}


def measure_scaled_ingest(bench: Bench) -> dict[str, Any]:
    plan = bench.plan
    addresses = [r.address for r in bench.services.metadata_replicas]
    per_stream = plan.frames // P8_REPLICAS

    def upload(streams: int) -> dict[str, Any]:
        _, version_id = bench.new_dataset(f"scale-{streams}")
        count = plan.frames if streams == 1 else per_stream
        clients = [{"target": addresses[n], "version_id": version_id, "prefix": f"s{n}", "count": count,
                    "frames_per_message": plan.frames_per_message} for n in range(streams)]
        return _aggregate(bench, lambda: _together("upload", clients))

    two, one = _alternate(plan.repeat, lambda: upload(P8_REPLICAS), lambda: upload(1))
    for sample in two + one:
        expected = plan.frames if sample["streams"] == 1 else per_stream * P8_REPLICAS
        if sample["frames"] != expected:
            raise RuntimeError(f"uploaded {sample['frames']} frames of {expected}")
    return _measured(two, one)


def measure_scaled_iteration(bench: Bench) -> dict[str, Any]:
    data = bench.uploaded_dataset()
    addresses = [r.address for r in bench.services.metadata_replicas]

    def iterate(streams: int) -> dict[str, Any]:
        clients = [{"target": addresses[n], "version_id": data.version_id} for n in range(streams)]
        return _aggregate(bench, lambda: _together("iterate", clients))

    two, one = _alternate(bench.plan.repeat, lambda: iterate(P8_REPLICAS), lambda: iterate(1))
    for sample in two + one:
        if sample["frames"] != data.frames * sample["streams"]:
            raise RuntimeError(f"read {sample['frames']} frames of {data.frames * sample['streams']}")
    return _measured(two, one)


def p8_rows(bench: Bench) -> list[Row]:
    """Needs a phase of ``P8_REPLICAS`` metadata replicas (``processes.running_services(metadata_replicas=...)``)."""
    if len(bench.services.metadata_replicas) != P8_REPLICAS:
        raise RuntimeError(f"P8 needs {P8_REPLICAS} metadata replicas, the phase has "
                           f"{len(bench.services.metadata_replicas)}")
    plan = bench.plan
    rows = []
    for key, label, measure, work in (
        ("ingest", "ingest", measure_scaled_ingest,
         f"UploadFrames of {format_count(plan.frames)} frames into a new draft per repeat: 1 stream of all "
         f"frames to one replica, or {P8_REPLICAS} streams of half each into the same draft, one per replica, {plan.frames_per_message} frames/message"),
        ("iterate", "ordered iteration", measure_scaled_iteration,
         f"IterateFrames of a {format_count(plan.frames)}-frame version whole, sequential order: 1 stream "
         f"from one replica, or {P8_REPLICAS} streams at once reading it whole, one per replica, server default "
         "frames/message"),
    ):
        measured = measure(bench)
        conditions = (f"{work}; each stream from its own client process; {P8_REPLICAS} metadata replicas (one database, one blob service) run "
                      f"throughout, streams addressed to a replica each (balancing itself is tested in "
                      f"tests/e2e/test_balancing.py); concurrent streams timed together, first start to last "
                      f"end; metadata CPU {measured['two_cpu_us_per_frame']:.0f} µs/frame with {P8_REPLICAS} "
                      f"replicas, {measured['one_cpu_us_per_frame']:.0f} with 1; median of {plan.repeat}; "
                      f"report only: on a machine with fewer free cores than processes the ratio measures "
                      f"the cores, not the design")
        rows.append(Row(f"P8.{key}", f"{label} frames/s: {P8_REPLICAS} metadata replicas + {P8_REPLICAS} "
                        f"streams ÷ 1 + 1", "fr/s", measured["service"], measured["raw"], REPORT_ONLY, conditions,
                        details={**measured, "metadata_cpu_us_per_frame": measured["two_cpu_us_per_frame"]}))
    return rows


def _p10_kind(row_id: str) -> str | None:
    for kind in P10_ROWS:
        if row_id == kind or row_id.startswith(f"{kind}."):
            return kind
    return None


def p10_rows(secure: list[Row], plain: list[Row]) -> list[Row]:
    """For every main row measured in both phases: security on ÷ security off, in the same run.

    ``secure`` and ``plain`` are the rows of the phase with mutual TLS and a
    bearer token checked on every call, and of the phase with neither.
    """
    off = {row.id: row for row in plain if row.service is not None}
    rows = []
    for on in secure:
        kind = _p10_kind(on.id)
        counterpart = off.get(on.id)
        if kind is None or on.service is None or counterpart is None or counterpart.service is None:
            continue
        lower_is_better = on.id.startswith(LOWER_IS_BETTER)
        ratio = counterpart.service / on.service if lower_is_better else on.service / counterpart.service
        cpu_on = on.details.get("metadata_cpu_us_per_frame")
        cpu_off = counterpart.details.get("metadata_cpu_us_per_frame")
        cpu = (f"; metadata CPU {cpu_on:.0f} µs/frame on, {cpu_off:.0f} off"
               if cpu_on is not None and cpu_off is not None else "")
        rows.append(Row(
            f"P10.{on.id}", f"{on.id} with security on ÷ off ({'off ÷ on, a time' if lower_is_better else 'on ÷ off'})",
            on.unit, on.service, counterpart.service, REPORT_ONLY,
            f"{on.id} measured as its row says, once by services serving mutual TLS with the local CA and "
            f"checking an API key on every call (security_mode on), once with plaintext and security off, "
            f"fresh services per phase, same run; 1.0 = security costs nothing{cpu}",
            ratio=ratio, details={"on": on.details, "off": counterpart.details}))
    return rows
