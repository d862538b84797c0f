"""`make run`'s launcher brings both services up on the local stack and stops them cleanly."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import free_port

REPO = Path(__file__).resolve().parents[2]



def test_launcher_serves_both_services_and_stops_gracefully(stack_env):
    metadata, blob = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    metrics = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    env = {**os.environ, "FRAMEVAULT_METADATA_ADDRESS": metadata, "FRAMEVAULT_BLOB_ADDRESS": blob,
           "FRAMEVAULT_METADATA_METRICS_ADDRESS": metrics[0], "FRAMEVAULT_BLOB_METRICS_ADDRESS": metrics[1],
           "FRAMEVAULT_GATEWAY_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
           "FRAMEVAULT_MONGODB_DATABASE": "fvtest_launcher"}
    proc = subprocess.Popen([sys.executable, "-m", "framevault.stack", "run"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = proc.stdout.readline()
        assert "framevault is up" in banner, banner
        for address in (metadata, blob):
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        for address in metrics:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as page:
                assert b"framevault_rpc_duration_seconds" in page.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", int(metadata.rsplit(":", 1)[1]))) != 0:
                break
        time.sleep(0.1)
    else:
        raise AssertionError("metadata port still open after stop")
