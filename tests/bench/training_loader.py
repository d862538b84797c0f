"""Row T1: frames per second a training loop gets from ``framevault.sdk.training`` ÷ reading the same images from disk.

Harness side: :func:`t1_rows`. Client side: ``python training_loader.py '<json params>'``
(its own process, like every measurement) makes a dataset of N real JPEG
images through the SDK (not timed), then alternates, per repeat:

- **service, cold**: a ``FrameLoader`` over a ``FrameDataset`` (batch 32, no
  worker processes, default prefetch budget) with an empty blob cache: every
  image is downloaded through the blob service, written to the
  content-addressed cache, read back and decoded to a ``C x H x W`` uint8 tensor;
- **service, warm**: the same again over the now filled cache (what every
  epoch after the first costs);
- **raw**: the same files read from local disk and decoded the same way
  (``decode_image``, ``torch.from_numpy``) in a loop, in the same process.

Both sides decode, so the ratio is what the loader costs on top of the work a
training input pipeline must do anyway.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import processes
from report import Row, Target, median

FRAMES_FULL = 1000
WIDTH, HEIGHT = 320, 240
BATCH_SIZE = 32
JPEG_QUALITY = 90


def t1_rows(bench: Any) -> list[Row]:
    plan = bench.plan
    # 1000 frames in a full run, 250 with --quick (a twentieth of P1's frames, at most 1000).
    frames = max(50, min(FRAMES_FULL, plan.frames // 20))
    result = run_client(metadata_target=bench.services.metadata.address, blob_target=bench.services.blob.address,
                        frames=frames, repeat=plan.repeat)
    samples = result["samples"]
    cold = median([frames / s["service_cold_s"] for s in samples])
    warm = median([frames / s["service_warm_s"] for s in samples])
    raw = median([frames / s["raw_s"] for s in samples])
    conditions = (f"{frames} JPEG images {WIDTH}x{HEIGHT} (quality {JPEG_QUALITY}, mean "
                  f"{result['mean_image_bytes'] / 1000:.1f} KB) in the blob service; service: FrameLoader over "
                  f"FrameDataset, batch {BATCH_SIZE}, no worker processes, decoded to uint8 tensors, cold = empty "
                  f"blob cache, warm = filled cache; raw: the same files read from local disk and decoded the same "
                  f"way in a loop; one client process; median of {plan.repeat}")
    return [
        Row("T1", "training loader frames/s, cold cache (decode included) ÷ disk read + decode", "fr/s", cold,
            raw, Target("ratio", "report"), conditions, details=result),
        Row("T1.warm", "training loader frames/s, warm cache (decode included) ÷ disk read + decode", "fr/s",
            warm, raw, Target("ratio", "report"), conditions),
    ]


def run_client(**params: Any) -> dict[str, Any]:
    """This module's measurement in a process of its own (as ``processes.run_client`` runs ``clients.py`` jobs)."""
    completed = subprocess.run([sys.executable, __file__, json.dumps(params)], cwd=processes.REPO,
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"training loader client failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


# --- client process ------------------------------------------------------------------


def make_images(folder: Path, count: int) -> list[Path]:
    """JPEGs of smooth gradients with noise: sizes like photos', each one different."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    paths = []
    for index in range(count):
        rng = np.random.default_rng(index)
        base = np.stack([(xs + index) % 256, (ys * 2 + index) % 256, (xs + ys) % 256], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img{index:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=JPEG_QUALITY)
        paths.append(path)
    return paths


def measure(metadata_target: str, blob_target: str, frames: int, repeat: int) -> dict[str, Any]:
    import torch
    from rows_sdk import _configure

    from framevault.sdk import DatasetVersion, DataView, SingleFrame
    from framevault.sdk.training import FrameDataset, FrameLoader, decode_image

    # The services of the phase serve TLS (security is on by default): the SDK rows' configuration.
    _configure(metadata_target, blob_target)
    work = Path(tempfile.mkdtemp(prefix="fvbench-training-"))
    try:
        paths = make_images(work / "images", frames)
        name = f"bench-training-{uuid.uuid4().hex[:8]}"
        DatasetVersion.create_new_dataset(name)
        draft = DatasetVersion.get_version(name)
        failed = draft.add_frames([SingleFrame(source=str(p), width=WIDTH, height=HEIGHT, id=p.stem) for p in paths],
                                  progress=False)
        if failed:
            raise RuntimeError(f"{len(failed)} frames were not added: {failed[0]}")
        view = DataView()
        view.add_query(dataset_name=name)

        def service(cache: Path) -> float:
            loader = FrameLoader(FrameDataset(view, masks=False, cache_dir=cache), batch_size=BATCH_SIZE)
            started = time.perf_counter()
            delivered = sum(len(batch) for batch in loader)
            elapsed = time.perf_counter() - started
            if delivered != frames:
                raise RuntimeError(f"the loader delivered {delivered} of {frames} frames")
            return elapsed

        def raw() -> float:
            started = time.perf_counter()
            for path in paths:
                torch.from_numpy(decode_image(path.read_bytes())).permute(2, 0, 1)
            return time.perf_counter() - started

        samples = []
        for attempt in range(repeat):
            cache = work / f"cache-{attempt}"
            sample: dict[str, float] = {}
            if attempt % 2:
                sample["raw_s"] = raw()
            sample["service_cold_s"] = service(cache)
            sample["service_warm_s"] = service(cache)
            if "raw_s" not in sample:
                sample["raw_s"] = raw()
            samples.append(sample)
            shutil.rmtree(cache, ignore_errors=True)
        return {"samples": samples, "frames": frames,
                "mean_image_bytes": sum(p.stat().st_size for p in paths) / len(paths)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
