"""Row W1: time until the web app shows the first 100 thumbnails of a large version ÷ the same list call over gRPC.

Harness side: :func:`w1_rows` starts the gateway (``python -m framevault.gateway``, serving the built
web app, ``make web``) in front of the phase's services and runs the client side,
``python tests/bench/rows_web.py '<json params>'``, in a process of its own. That process:

- makes a draft of N frames (not timed): 100 different real JPEG images (320x240) stored once in the
  blob service, each frame referencing one of them (frame i -> image i mod 100, no stored preview, so
  the gateway has the blob service make each thumbnail on demand), one box and two metadata keys;
- **web**: opens the frames page at 1280x720 in Debian's Chromium (tests/web/browser.py) with 100
  tiles a page and measures from the start of navigation (``performance.now()``) until all 100
  thumbnail images are decoded: page load, the API calls, the thumbnail redirects and image downloads.
  The first visit is **cold** (each tile asks the gateway's thumbnail path, which has the blob service
  make its preview); later visits, each in a new browser context (no browser cache), are **warm** (the
  previews exist, and the list answer carries their download URLs: the browser fetches them at once);
- **raw**: the gateway's own list call, ``ListViewFrames`` of 100 frames with the grid's projection,
  made directly over gRPC from the same process.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import processes
from report import Row, Target, median

from framevault.stack import local
from framevault.stack.supervision import free_port

FRAMES_PER_CONTEXT = 300
FRAME_INTERVAL_MS = 33
IMAGES = 100
WIDTH, HEIGHT = 320, 240
TILES = 100
FRAMES_PER_MESSAGE = 500
WEB_DIST = processes.REPO / "clients" / "web" / "dist"
GATEWAY_START_SECONDS = 60.0


def w1_rows(bench: Any) -> list[Row]:
    # Five times P1's frames: 100k in a full run, 25k with --quick.
    frames = max(10_000, bench.plan.frames * 5)
    repeat = max(2, bench.plan.repeat + 1)
    with running_gateway(bench) as url:
        result = run_client(url=url, metadata_target=bench.services.metadata.address,
                            blob_target=bench.services.blob.address, frames=frames, repeat=repeat,
                            token=bench.services.client_env.get("FRAMEVAULT_TOKEN", ""))
    grpc_ms = median(result["grpc_list_ms"])
    cold_ms = result["web_ms"][0]
    warm_ms = median(result["web_ms"][1:])
    conditions = (f"version of {frames} frames ({FRAMES_PER_CONTEXT} per context), {IMAGES} different "
                  f"{WIDTH}x{HEIGHT} JPEGs in the blob service, no stored previews; web: Chromium 1280x720 opens "
                  f"the frames page ({TILES} tiles a page) and waits until all {TILES} thumbnails are decoded, "
                  f"from navigation start; cold = first visit (the blob service makes the previews), warm = "
                  f"median of {repeat - 1} later visits, each in a new browser context (tiles get download URLs of the "
                  f"previews in the list answer); raw: ListViewFrames of "
                  f"{TILES} with the grid's projection over gRPC, median of {len(result['grpc_list_ms'])}")
    return [
        Row("W1", "web: first 100 thumbnails shown, cold previews ÷ the same list call over gRPC", "ms", cold_ms,
            grpc_ms, Target("ratio", "report"), conditions, details=result),
        Row("W1.warm", "web: first 100 thumbnails shown, previews made ÷ the same list call over gRPC", "ms",
            warm_ms, grpc_ms, Target("ratio", "report"), conditions),
    ]


@contextmanager
def running_gateway(bench: Any) -> Iterator[str]:
    """The gateway in front of the phase's services (their security settings), until the block ends."""
    if not (WEB_DIST / "index.html").is_file():
        raise RuntimeError(f"the web app is not built ({WEB_DIST}): run `make web` (make bench does)")
    address = f"127.0.0.1:{free_port()}"
    secure = bool(bench.services.client_env)
    env = {
        **os.environ, **bench.env,
        "FRAMEVAULT_SECURITY_MODE": "on" if secure else "local-dev",
        "FRAMEVAULT_ALLOW_PLAINTEXT": "false" if secure else "true",
        "FRAMEVAULT_METADATA_TARGET": bench.services.metadata.address,
        "FRAMEVAULT_BLOB_TARGET": bench.services.blob.address,
        "FRAMEVAULT_GATEWAY_LISTEN_ADDRESS": address,
        "FRAMEVAULT_GATEWAY_STATIC_DIR": str(WEB_DIST),
        "FRAMEVAULT_LOG_LEVEL": "WARNING",
    }
    if secure:
        # The gateway calls the services with a service's client certificate, as make run's does.
        env.update(local.Stack().pki().service_env("metadata"))
    log_path = processes.OUTPUT_DIR / "gateway-web.log"
    with log_path.open("wb") as log:
        gateway = subprocess.Popen([sys.executable, "-m", "framevault.gateway"], env=env, cwd=processes.REPO,
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + GATEWAY_START_SECONDS
        while not _healthy(url):
            if gateway.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start; its log:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.3)
        yield url
    finally:
        gateway.terminate()
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/healthz", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_client(**params: Any) -> dict[str, Any]:
    """The client side in a process of its own; tests/ on its path for the browser helpers (tests/web)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(processes.REPO / "tests"),
                                                                      os.environ.get("PYTHONPATH", "")]))}
    completed = subprocess.run([sys.executable, __file__, json.dumps(params)], cwd=processes.REPO, env=env,
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"web client failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


# --- client process ------------------------------------------------------------------


def make_images() -> list[bytes]:
    """Different JPEGs: a gradient with a shade of its own each."""
    import numpy as np
    from PIL import Image

    images = []
    ramp = np.linspace(0, 255, WIDTH, dtype=np.uint8)[None, :, None]
    for n in range(IMAGES):
        pixels = np.broadcast_to(ramp, (HEIGHT, WIDTH, 3)).copy()
        pixels[..., 1] = (n * 37) % 256
        pixels[..., 2] = np.linspace(0, 255, HEIGHT, dtype=np.uint8)[:, None]
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="JPEG", quality=85)
        images.append(out.getvalue())
    return images


def seed(metadata_target: str, blob_target: str, frames: int) -> tuple[str, str]:
    """A dataset whose draft holds ``frames`` frames over the images; (dataset id, version id)."""
    import hashlib

    from client_channels import channel

    import clients
    from framevault.v1 import blob_pb2, blob_pb2_grpc, dataset_pb2, frame_pb2, metadata_pb2, metadata_service_pb2_grpc
    from framevault.v1 import metadata_service_pb2 as ms

    blobs = blob_pb2_grpc.BlobServiceStub(channel(blob_target))
    metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel(metadata_target))
    uris = []
    requests = []
    for data in make_images():
        digest = blob_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        requests.append(blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest, data=data))
        uris.append(f"blob:sha256/{digest.hash}/{digest.size_bytes}")
    answer = blobs.BatchUpdateBlobs(blob_pb2.BatchUpdateBlobsRequest(requests=requests), timeout=120)
    assert all(r.status.code == 0 for r in answer.responses), answer

    name = f"web-bench-{uuid.uuid4().hex[:8]}"
    dataset = metadata.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=60)
    draft = metadata.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")), timeout=60)

    def frame(index: int) -> frame_pb2.Frame:
        clip, position = divmod(index, FRAMES_PER_CONTEXT)
        return frame_pb2.Frame(
            id=f"f{index:08d}", context_id=f"c{clip:05d}", timestamp=position * FRAME_INTERVAL_MS,
            sources=[frame_pb2.Source(uri=uris[index % IMAGES], content_type="image/jpeg", width=WIDTH, height=HEIGHT)],
            rois=[frame_pb2.Roi(labels=["car"], confidence=0.8,
                                box=frame_pb2.Box2D(x=index % 200, y=20, w=80, h=60))],
            meta=metadata_pb2.Metadata(fields={"frame_index": metadata_pb2.MetadataValue(int_value=index),
                                               "weather": metadata_pb2.MetadataValue(string_value="clear")}))

    def payloads() -> Iterator[tuple[bytes, int]]:
        for start in range(0, frames, FRAMES_PER_MESSAGE):
            items = [ms.UploadItem(frame=frame(i)) for i in range(start, min(frames, start + FRAMES_PER_MESSAGE))]
            yield ms.UploadFramesRequest(items=items).SerializeToString(), len(items)

    # The bench's upload stream (clients.py), which waits for results within the service's window.
    uploaded = asyncio.run(clients._upload(metadata_target, draft.id, payloads(), retries=3))
    if uploaded["failed"]:
        raise RuntimeError(f"{uploaded['failed']} frames were not stored: {uploaded['errors']}")
    return dataset.id, draft.id


def grpc_list_ms(metadata_target: str, version_id: str, samples: int) -> list[float]:
    """The gateway's list call for the grid's first page, made directly: ListViewFrames, same view."""
    from client_channels import channel

    from framevault.gateway.browse import SUMMARY_PROJECTION
    from framevault.v1 import dataset_pb2, metadata_service_pb2_grpc, view_pb2
    from framevault.v1 import metadata_service_pb2 as ms

    metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel(metadata_target))
    view = view_pb2.View(selections=[view_pb2.ViewSelection(version=dataset_pb2.VersionRef(id=version_id))],
                         order=view_pb2.ITERATION_ORDER_SEQUENTIAL)
    view.projection.paths.extend(SUMMARY_PROJECTION)
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        page = metadata.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=TILES), timeout=60)
        timings.append((time.perf_counter() - started) * 1000)
        assert len(page.frames) == TILES, len(page.frames)
    return timings


def web_ms(url: str, path: str, token: str, visits: int) -> list[float]:
    """Milliseconds from navigation start until the grid's first TILES thumbnails are decoded, per visit."""
    from web.browser import chromium, new_context, sign_in

    all_decoded = (f"() => {{ const shown = [...document.querySelectorAll('[data-testid=thumbnail]')];"
                   f" return shown.length >= {TILES} && shown.slice(0, {TILES}).every(i => i.complete && i.naturalWidth > 0)"
                   f" ? performance.now() : false; }}")
    timings = []
    with chromium() as browser:
        for _ in range(visits):
            context = new_context(browser, url)
            page = context.new_page()
            if token:
                page.goto("/sign-in")
                sign_in(page, token)
            page.goto(path, wait_until="commit")
            timings.append(float(page.wait_for_function(all_decoded, polling="raf", timeout=600_000).json_value()))
            context.close()
    return timings


def client_main(params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    dataset_id, version_id = seed(params["metadata_target"], params["blob_target"], params["frames"])
    seeded_s = time.perf_counter() - started
    path = f"/datasets/{dataset_id}/versions/{version_id}?size={TILES}"
    web = web_ms(params["url"], path, params["token"], params["repeat"])
    return {"frames": params["frames"], "seed_s": round(seeded_s, 1), "web_ms": [round(t, 1) for t in web],
            "grpc_list_ms": [round(t, 2) for t in grpc_list_ms(params["metadata_target"], version_id, 20)]}


if __name__ == "__main__":
    print(json.dumps(client_main(json.loads(sys.argv[1]))))
