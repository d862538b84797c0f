"""framevault benchmark harness: ``make bench`` (or ``python tests/bench/harness.py --help``).

One run measures rows P1–P7 of the speed and memory goals, each against a
raw baseline measured in the same run, prints one table and writes
``.bench/results-<timestamp>-<run id>.json``. Targets are reported, never asserted.
See tests/bench/README.md for what each row measures and how to read it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import processes
import profiles
import rows as bench_rows
import rows_blob_direct
import rows_scale
import rows_sdk
import rows_web
import training_loader
from pymongo import MongoClient
from report import Row, failed_row, format_conditions, format_table, write_json
from workload import parse_bytes, parse_count

from framevault.common.config import Settings
from framevault.stack.session_data import make_bucket, remove_stale_test_data, remove_test_data

ALL_ROWS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "T1", "W1")

# Defaults of a full run, sized to finish within 20 minutes on the 2-core development machine.
DEFAULTS: dict[str, Any] = {
    "frames": "20000",
    "frames_per_message": 500,
    "repeat": 3,
    "blob_sizes": "1MiB,64MiB,1GiB",
    "blob_chunk_size": "1MiB",
    "child_sizes": "10000,100000,1000000",
    "child_read_frames": "50000",
    "memory_frames": "1000000",
    "latency_seconds": 10.0,
}
QUICK: dict[str, Any] = {
    "frames": "5000",
    "repeat": 1,
    "blob_sizes": "1MiB,64MiB",
    "child_sizes": "10000",
    "child_read_frames": "10000",
    "memory_frames": "20000",
    "latency_seconds": 3.0,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure P1-P7 against raw baselines in one run; print a table and write .bench/*.json.")
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere (a smoke run of a minute or two)")
    parser.add_argument("--only", help="comma-separated rows to run, e.g. P1,P3 (P7 also runs P1 and P2; "
                                       "P10 measures P1, P2, P3 and P6 with security on and off)")
    parser.add_argument("--frames", help=f"frames for P1, P2, P6, P7 (default {DEFAULTS['frames']})")
    parser.add_argument("--frames-per-message", type=int, help="frames per UploadFrames request (default 500)")
    parser.add_argument("--repeat", type=int, help="repeats per measurement; medians are reported (default 3)")
    parser.add_argument("--blob-sizes", help=f"P3 blob sizes (default {DEFAULTS['blob_sizes']})")
    parser.add_argument("--blob-chunk-size", help="P3 WriteBlob/ReadBlob chunk size (default 1MiB)")
    parser.add_argument("--child-sizes", help=f"P4 parent version sizes (default {DEFAULTS['child_sizes']})")
    parser.add_argument("--child-read-frames", help="P4: frames read from child and parent "
                                                    f"(default {DEFAULTS['child_read_frames']})")
    parser.add_argument("--memory-frames", help=f"P5 frames streamed in and out (default {DEFAULTS['memory_frames']})")
    parser.add_argument("--latency-seconds", type=float, help="P6 measuring time per side (default 10)")
    parser.add_argument("--driver", choices=("motor", "pymongo"), default="motor",
                        help="MongoDB driver of the metadata service outside P7 (default motor, the product's)")
    parser.add_argument("--profile", choices=("py-spy", "cprofile"),
                        help="profile the service processes; output in .bench/profile-*")
    parser.add_argument("--services-dir", type=Path,
                        help="run the services from this directory (holding framevault/) instead of the "
                             "installed tree, e.g. a copy with a candidate change")
    parser.add_argument("--security", choices=("on", "off"), default="on",
                        help="services serve mutual TLS and check an API key on every call (on, the default, as "
                             "the product), or plaintext with security off, in every phase but P10's, which runs both")
    parser.add_argument("--keep-data", action="store_true", help="keep the run's database and bucket afterwards")
    args = parser.parse_args(argv)
    chosen = {**DEFAULTS, **(QUICK if args.quick else {})}
    for name in DEFAULTS:
        if getattr(args, name) is None:
            setattr(args, name, chosen[name])
    args.rows = _selected_rows(args.only)
    return args


def _selected_rows(only: str | None) -> list[str]:
    if not only:
        return list(ALL_ROWS)
    picked = [part.strip().upper() for part in only.split(",") if part.strip()]
    unknown = [p for p in picked if p not in ALL_ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {','.join(ALL_ROWS)}")
    return picked


def make_plan(args: argparse.Namespace) -> bench_rows.Plan:
    return bench_rows.Plan(
        frames=parse_count(str(args.frames)),
        frames_per_message=args.frames_per_message,
        repeat=max(1, args.repeat),
        blob_sizes=[parse_bytes(s) for s in str(args.blob_sizes).split(",") if s.strip()],
        blob_chunk_size=parse_bytes(str(args.blob_chunk_size)),
        child_sizes=[parse_count(s) for s in str(args.child_sizes).split(",") if s.strip()],
        child_read_frames=parse_count(str(args.child_read_frames)),
        memory_frames=parse_count(str(args.memory_frames)),
        latency_seconds=args.latency_seconds,
    )


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=processes.REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def reset_bench_data(env: dict[str, str], settings: Settings) -> None:
    """Empties the run's database and makes sure the run's bucket exists."""
    client: MongoClient[dict[str, Any]] = MongoClient(env["FRAMEVAULT_MONGODB_URI"])
    client.drop_database(processes.BENCH_DATABASE)
    client.close()
    if not _minio(settings).bucket_exists(processes.BENCH_BUCKET):
        make_bucket(processes.BENCH_BUCKET)


def _minio(settings: Settings) -> Any:
    from minio import Minio

    return Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key.get_secret_value(),
                 secure=settings.s3_secure, region=settings.s3_region)


class Run:
    """One harness run: phases of service processes, the rows they measure, the results."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.plan = make_plan(args)
        self.env = processes.stack_env()
        self.settings = Settings.from_env({**os.environ, **self.env})
        self.rows: list[Row] = []
        self.motor: dict[str, dict[str, Any]] = {}
        self.profiles: list[str] = []
        self.stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    @property
    def secure(self) -> bool:
        return bool(self.args.security == "on")

    def wants(self, *row_ids: str) -> bool:
        return any(r in self.args.rows for r in row_ids)

    def measure(self, row_id: str, what: str, produce: Callable[[], list[Row]]) -> None:
        started = time.perf_counter()
        print(f"[bench] {row_id}: {what} ...", file=sys.stderr, flush=True)
        try:
            produced = produce()
        except Exception as exc:  # noqa: BLE001 - one failing row must not cost the others
            traceback.print_exc()
            produced = [failed_row(row_id, what, exc)]
        for row in produced:
            row.details["elapsed_s"] = round(time.perf_counter() - started, 1)
        self.rows.extend(produced)
        print(f"[bench] {row_id}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    def phase(self, label: str, driver: str, body: Callable[[bench_rows.Bench], None], *,
              metadata_replicas: int = 1, secure: bool | None = None) -> None:
        """Fresh bench data and fresh service processes for ``body`` (security as ``--security`` says
        unless ``secure`` is given)."""
        reset_bench_data(self.env, self.settings)
        profiler = processes.Profiler(self.args.profile, f"{self.stamp}-{label}")
        with processes.running_services(self.env, driver=driver, profiler=profiler, services_dir=self.args.services_dir,
                                        metadata_replicas=metadata_replicas,
                                        secure=self.secure if secure is None else secure) as services:
            bench = bench_rows.Bench(self.plan, self.env, services, self.settings.s3_part_size_bytes)
            try:
                with processes.clients_of(services):
                    body(bench)
            finally:
                bench.close()
        self.profiles += [str(p) for p in profiler.outputs]

    def run(self) -> None:
        if self.wants("P1", "P2", "P3", "P6", "P7"):
            self.phase(self.args.driver, self.args.driver, self._main_rows)
        if self.wants("P10"):
            self._security_cost()
        if self.wants("P7"):
            self.phase("pymongo", "pymongo", lambda bench: self.measure(
                "P7", "P1 and P2 with pymongo.AsyncMongoClient", lambda: bench_rows.p7_rows(bench, self.motor)))
        if self.wants("P5"):
            self.phase("memory", self.args.driver, lambda bench: self.measure(
                "P5", "service memory while streaming in and out", lambda: bench_rows.p5_rows(bench)))
        if self.wants("P4"):
            self.phase("children", self.args.driver, lambda bench: self.measure(
                "P4", "copy-free children", lambda: bench_rows.p4_rows(bench)))
        if self.wants("P8"):
            self.phase("replicas", self.args.driver, lambda bench: self.measure(
                "P8", "two metadata replicas", lambda: rows_scale.p8_rows(bench)),
                metadata_replicas=rows_scale.P8_REPLICAS)
        if self.wants("P9"):
            self.phase("sdk", self.args.driver, lambda bench: self.measure(
                "P9", "the SDK as users call it", lambda: rows_sdk.p9_rows(bench, self.args.services_dir)))
        if self.wants("T1"):
            self.phase("training", self.args.driver, lambda bench: self.measure(
                "T1", "training loader", lambda: training_loader.t1_rows(bench)))
        if self.wants("W1"):
            self.phase("web", self.args.driver, lambda bench: self.measure(
                "W1", "web app: first 100 thumbnails", lambda: rows_web.w1_rows(bench)))

    def _security_cost(self) -> None:
        """P10: services with security on and services with security off, both running, the main rows
        measured on each in turn."""
        reset_bench_data(self.env, self.settings)
        once = dataclasses.replace(self.plan, repeat=1)
        with contextlib.ExitStack() as running:
            benches = {}
            for secure in (True, False):
                profiler = processes.Profiler(None, f"{self.stamp}-security-{'on' if secure else 'off'}")
                services = running.enter_context(processes.running_services(
                    self.env, driver=self.args.driver, profiler=profiler, services_dir=self.args.services_dir,
                    secure=secure))
                benches[secure] = bench_rows.Bench(once, self.env, services, self.settings.s3_part_size_bytes)
                running.callback(benches[secure].close)
            self.measure("P10", "security on ÷ off", lambda: rows_scale.p10_rows(
                benches[True], benches[False], self.plan.repeat))

    def _main_rows(self, bench: bench_rows.Bench) -> None:
        if self.wants("P3"):
            self.measure("P3", "blob throughput", lambda: bench_rows.p3_rows(bench))
            self.measure("P3", "SDK direct blob transfers", lambda: rows_blob_direct.p3_direct_rows(
                bench, tuple(s for s in self.plan.blob_sizes if s >= rows_blob_direct.MIN_SIZE),
                self.args.services_dir))
        if self.wants("P1", "P7"):
            def ingest() -> list[Row]:
                produced, self.motor["ingest"] = bench_rows.p1_rows(bench)
                return produced
            self.measure("P1", "ingest", ingest)
        if self.wants("P2", "P7"):
            def iterate() -> list[Row]:
                produced, self.motor["iterate"] = bench_rows.p2_rows(bench)
                return produced
            self.measure("P2", "ordered iteration", iterate)
        if self.wants("P6"):
            self.measure("P6", "get-one latency", lambda: bench_rows.p6_rows(bench))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run = Run(args)
    started = time.perf_counter()
    load_before = os.getloadavg()
    # A stopped run (Ctrl-C, SIGTERM) still stops its services and removes its data.
    signal.signal(signal.SIGTERM, processes.exit_on_signal)
    removed = remove_stale_test_data()
    if removed:
        print(f"[bench] removed the data of {len(removed)} killed test or benchmark runs", file=sys.stderr)
    print(f"[bench] data: database {processes.BENCH_DATABASE}, bucket {processes.BENCH_BUCKET}",
          file=sys.stderr, flush=True)
    try:
        run.run()
    finally:
        with processes.teardown():
            if args.keep_data:
                print(f"[bench] kept database {processes.BENCH_DATABASE} and bucket {processes.BENCH_BUCKET}",
                      file=sys.stderr)
            else:
                remove_test_data(database=processes.BENCH_DATABASE, bucket=processes.BENCH_BUCKET)
    elapsed = time.perf_counter() - started
    run_info = {
        "started": run.stamp,
        "duration_s": round(elapsed, 1),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", "services")),
        "argv": argv,
        "services_dir": str(args.services_dir) if args.services_dir else "",
        "plan": vars(run.plan),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": load_before, "load_after": os.getloadavg()},
        "profiles": run.profiles,
    }
    # The run id keeps two runs started in the same second (an A/B beside another run) apart.
    path = processes.OUTPUT_DIR / f"results-{run.stamp}-{processes.RUN_ID}.json"
    write_json(path, run_info, run.rows)
    print()
    source = f"services from {args.services_dir}" if args.services_dir else (
        f"commit {run_info['commit'][:10]}{' + uncommitted service changes' if run_info['dirty'] else ''}")
    print(f"framevault bench {run.stamp}, {source}, {elapsed / 60:.1f} min, "
          f"load {load_before[0]:.1f} -> {run_info['machine']['load_after'][0]:.1f} on {os.cpu_count()} cpus")
    print(format_table(run.rows))
    print()
    print("Conditions (ratio = service ÷ raw baseline; targets are reported, never asserted):")
    print(format_conditions(run.rows))
    for profile in run.profiles:
        print()
        print(profiles.summary(profile))
    print()
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
