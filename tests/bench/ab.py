"""Interleaved A/B runs of the harness: which of two service trees is faster, with spreads.

    .venv/bin/python tests/bench/ab.py --a /tmp/bench-old/services --b installed \\
        --rounds 4 -- --only P1,P2 --repeat 3

``--a`` and ``--b`` are each a services directory (``--services-dir`` of the
harness, e.g. ``services/`` of a ``git worktree``) or ``installed`` (the
editable install of this checkout). Every round runs the harness once per
side, A first on even rounds and B first on odd ones, so both sides see the
same drift of the machine's load. Each harness run measures its own raw
baselines, so the ratios of one run are comparable; absolute numbers across
runs are not. The table shows, per row, the median ratio of each side with
its range over the rounds, and the median of the per-round quotients B ÷ A;
``<row> cpu`` lines are the metadata service's CPU µs per frame (lower is
better), which moves far less with the machine's load than a ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import processes

HARNESS = Path(__file__).resolve().parent / "harness.py"
INSTALLED = "installed"


def run_harness(side: str, harness_args: list[str]) -> dict[str, Any]:
    argv = [sys.executable, str(HARNESS), *harness_args]
    if side != INSTALLED:
        argv += ["--services-dir", side]
    harness = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = harness.communicate()
    finally:
        # Stopped ourselves: the harness stops too (and removes its data) instead of running on; a
        # second SIGTERM meanwhile waits for that (processes.teardown).
        with processes.teardown():
            if harness.poll() is None:
                harness.terminate()
                harness.wait()
    if harness.returncode != 0:
        raise SystemExit(f"harness failed for {side}:\n{stderr[-4000:]}")
    match = re.search(r"^results: (.+\.json)$", stdout, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no results file in the harness output for {side}:\n{stdout[-2000:]}")
    return {**json.loads(Path(match.group(1)).read_text()), "results_file": Path(match.group(1)).name}


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Each row's ratio and, where measured, the metadata service's CPU per frame (``<row> cpu``) and
    the measuring client's (``<row> client cpu``, rows of the SDK)."""
    found: dict[str, float] = {}
    for row in result["rows"]:
        if row.get("ratio") is not None:
            found[row["id"]] = float(row["ratio"])
        details = row.get("details") or {}
        cpu = details.get("metadata_cpu_us_per_frame")
        if cpu is not None:
            found[f"{row['id']} cpu"] = float(cpu)
        if details.get("client_cpu_us_per_frame") is not None:
            found[f"{row['id']} client cpu"] = float(details["client_cpu_us_per_frame"])
        for key, name in (("client_cpu_us_per_mib", "client cpu/MiB"), ("raw_client_cpu_us_per_mib", "raw client cpu/MiB")):
            if details.get(key) is not None:
                found[f"{row['id']} {name}"] = float(details[key])
    return found


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, processes.exit_on_signal)
    if "--" in argv:
        cut = argv.index("--")
        own, harness_args = argv[:cut], argv[cut + 1:]
    else:
        own, harness_args = argv, []
    parser = argparse.ArgumentParser(description="Interleaved A/B harness runs of two service trees.")
    parser.add_argument("--a", required=True, help=f"services directory of side A, or {INSTALLED!r}")
    parser.add_argument("--b", required=True, help=f"services directory of side B, or {INSTALLED!r}")
    parser.add_argument("--rounds", type=int, default=3, help="harness runs per side (default 3)")
    args = parser.parse_args(own)
    per_side: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    files: dict[str, list[str]] = {"A": [], "B": []}
    for round_number in range(args.rounds):
        order = ("A", "B") if round_number % 2 == 0 else ("B", "A")
        for name in order:
            result = run_harness(args.a if name == "A" else args.b, harness_args)
            per_side[name].append(ratios(result))
            files[name].append(result["results_file"])
            load = result["machine"]["load_before"][0], result["machine"]["load_after"][0]
            shown = "  ".join(f"{k} {v:.3f}" for k, v in per_side[name][-1].items())
            print(f"[ab] round {round_number + 1} {name}: load {load[0]:.1f} -> {load[1]:.1f}  {shown}",
                  file=sys.stderr, flush=True)
    print(f"A = {args.a}\nB = {args.b}\n{args.rounds} rounds, harness {' '.join(harness_args)}")
    print(f"{'row':<22} {'A median (range)':<26} {'B median (range)':<26} B ÷ A per round")
    for row_id in per_side["A"][0]:
        a = [r[row_id] for r in per_side["A"] if row_id in r]
        b = [r[row_id] for r in per_side["B"] if row_id in r]
        if not a or not b:
            continue
        quotients = [y / x for x, y in zip(a, b, strict=False) if x]
        print(f"{row_id:<22} {spread(a):<26} {spread(b):<26} {spread(quotients) if quotients else '-'}")
    print(f"A files: {', '.join(files['A'])}\nB files: {', '.join(files['B'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
