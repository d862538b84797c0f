"""``kill -9`` of a service process in the middle of an ingestion job, a restart, a resend: nothing lost, nothing twice.

The job (``ingest_job.py``, the Python SDK in its own process) pauses with
its upload stream open after half of the frames, once some of them are
registered; then one service gets SIGKILL, the job goes on against the dead
service and ends, the service starts again with the same entry point and
address, and the same job runs again. Afterwards the draft holds each frame
exactly once, and every source reads back as the bytes of its file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framevault.v1 import metadata_service_pb2 as ms

from .flows import count_frames, list_frames, read_blob, unique, version_ref, write_image
from .launch import SeparateServices

INGEST_JOB = Path(__file__).with_name("ingest_job.py")
FRAME_COUNT = 240
PAUSE_AFTER = 120  # a multiple of ingest_job.BATCH_FRAMES
JOB_TIMEOUT_SECONDS = 120


def job_result(process: subprocess.Popen[str]) -> dict[str, object]:
    try:
        out, err = process.communicate(timeout=JOB_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the ingestion job ran longer than {JOB_TIMEOUT_SECONDS}s:\n{err[-4000:]}")
    assert process.returncode == 0 and out.strip(), f"the job exited with {process.returncode}:\n{err[-8000:]}"
    return dict(json.loads(out.strip().splitlines()[-1]))


def start_job(services: SeparateServices, dataset: str, folder: Path, *pause: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(INGEST_JOB), dataset, str(folder), *pause],
                            env=services.client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_some_frames_registered(services: SeparateServices, dataset: str,
                                      job: subprocess.Popen[str]) -> None:
    metadata = services.metadata_stub()
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        try:
            if count_frames(metadata, version_ref(dataset)) > 0:
                return
        except Exception:  # noqa: BLE001 - the dataset may not exist yet
            pass
        if job.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no frame registered before the kill; job: {job_result(job)}")
        time.sleep(0.05)


@pytest.mark.parametrize("victim", ["metadata", "blob"])
def test_resend_after_kill_9_mid_upload_converges(separate_services: SeparateServices, victim: str,
                                                   tmp_path: Path) -> None:
    folder = tmp_path / "images"
    files = {f"{n // 60}/{n:04d}.png": write_image(folder / f"{n // 60}" / f"{n:04d}.png", (32, 24), n)
             for n in range(FRAME_COUNT)}
    dataset = unique(f"kill-{victim}")
    resume = tmp_path / "resume"

    interrupted = start_job(separate_services, dataset, folder, str(PAUSE_AFTER), str(resume))
    wait_until_some_frames_registered(separate_services, dataset, interrupted)
    separate_services.processes[victim].kill()
    resume.touch()
    first = job_result(interrupted)
    assert first.get("error") or first["failed"], f"every frame registered although {victim} was dead: {first}"

    separate_services.start(victim)
    resent = job_result(start_job(separate_services, dataset, folder))
    assert resent.get("failed") == [], resent
    assert resent["created"] + resent["updated"] + resent["unchanged"] == FRAME_COUNT, resent

    metadata = separate_services.metadata_stub()
    frames = list_frames(metadata, version_ref(dataset))
    assert sorted(f.id for f in frames) == sorted(files)  # every frame, each once
    assert count_frames(metadata, version_ref(dataset)) == FRAME_COUNT
    assert metadata.GetVersion(ms.GetVersionRequest(version=version_ref(dataset)), timeout=30).frame_count \
        == FRAME_COUNT
    blobs = separate_services.blob_stub()
    for frame in frames:
        assert read_blob(blobs, frame.sources[0].uri) == files[frame.id].read_bytes(), frame.id
