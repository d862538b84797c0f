"""Rows of scale and security: P8 (a second metadata replica) and P10 (what TLS and authentication cost).

P8 runs two metadata replicas (one database, one blob service) for the whole
row and alternates, repeat by repeat, one client process streaming to one
replica with two client processes streaming at once, one to each replica. Two
streams are timed together from the first one's start to the last one's end
(wall clock of the client processes), so the aggregate rate counts the time
they overlap and the time either ran alone.

P10 runs two sets of services at once, one serving mutual TLS and checking a
bearer token on every call, one in plaintext with security off, and measures
the main rows on both, alternating (see ``p10_rows``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import processes
from report import REPORT_ONLY, Row, median
from rows import Bench, _alternate, p1_rows, p2_rows, p3_rows, p6_rows
from workload import format_count

P8_REPLICAS = 2
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


def _p1(bench: Bench) -> list[Row]:
    return p1_rows(bench)[0]


def _p2(bench: Bench) -> list[Row]:
    return p2_rows(bench)[0]


# The main rows P10 measures both ways, in this order (P2 and P6 read the version P1 wrote last).
P10_MEASURES: tuple[Callable[[Bench], list[Row]], ...] = (p3_rows, _p1, _p2, p6_rows)


def p10_rows(secure: Bench, plain: Bench, repeat: int) -> list[Row]:
    """Every main row measured by ``secure``'s services (mutual TLS, an API key checked on every call)
    and by ``plain``'s (plaintext, security off), both running throughout; ratio on ÷ off.

    Each repeat measures a row once on each side, the side going first alternating, so drift of the
    shared machine's load reaches both; the benches' plans run each row once (``repeat=1``).
    """
    produced: dict[bool, list[Row]] = {True: [], False: []}
    for produce in P10_MEASURES:
        for n in range(repeat):
            for on in ((True, False) if n % 2 == 0 else (False, True)):
                bench = secure if on else plain
                with processes.clients_of(bench.services):
                    produced[on].extend(produce(bench))
    rows = []
    for row_id in dict.fromkeys(row.id for row in produced[True]):
        on_rows = [r for r in produced[True] if r.id == row_id and r.service is not None]
        off_rows = [r for r in produced[False] if r.id == row_id and r.service is not None]
        if not on_rows or not off_rows:
            continue
        on_value = median([r.service for r in on_rows if r.service is not None])
        off_value = median([r.service for r in off_rows if r.service is not None])
        lower_is_better = row_id.startswith(LOWER_IS_BETTER)
        ratio = off_value / on_value if lower_is_better else on_value / off_value
        cpu = {side: [r.details["metadata_cpu_us_per_frame"] for r in side_rows
                      if "metadata_cpu_us_per_frame" in r.details]
               for side, side_rows in (("on", on_rows), ("off", off_rows))}
        cpu_text = (f"; metadata CPU {median(cpu['on']):.0f} µs/frame on, {median(cpu['off']):.0f} off"
                    if cpu["on"] and cpu["off"] else "")
        rows.append(Row(
            f"P10.{row_id}", f"{row_id} with security on ÷ off{' (off ÷ on: a time)' if lower_is_better else ''}",
            on_rows[0].unit, on_value, off_value, REPORT_ONLY,
            f"{row_id} as its row measures it, by services serving mutual TLS with the local CA and checking "
            f"an API key on every call (security_mode on) and by services in plaintext with security off, both "
            f"running throughout, the side going first alternating; median of {len(on_rows)} per side; "
            f"1.0 = security costs nothing{cpu_text}",
            ratio=ratio, details={"on": [r.service for r in on_rows], "off": [r.service for r in off_rows],
                                  "on_ratios": [r.ratio for r in on_rows], "off_ratios": [r.ratio for r in off_rows],
                                  "metadata_cpu_us_per_frame": median(cpu["on"]) if cpu["on"] else None,
                                  "off_metadata_cpu_us_per_frame": median(cpu["off"]) if cpu["off"] else None}))
    return rows
