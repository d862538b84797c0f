"""versitygw: a second S3 server (Apache-2.0) for the storage conformance suite, built once with ``go install``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from .gobuild import find_go, go_env
from .settings import (
    DEFAULT_S3_BUCKET,
    DEFAULT_TIMEOUT,
    LOOPBACK,
    cache_dir,
)
from .supervision import StackError, file_lock, log, port_open, tail, terminate_pid, wait_until

VERSITYGW_MODULE = "github.com/versity/versitygw"
VERSITYGW_VERSION = "v1.8.0"


def ensure_versitygw() -> Path:
    """The ``versitygw`` binary of VERSITYGW_VERSION, built once with ``go install`` into the cache.

    $FRAMEVAULT_VERSITYGW_BIN overrides it. A cold build (module downloads included) takes about three minutes.
    """
    override = os.environ.get("FRAMEVAULT_VERSITYGW_BIN", "").strip()
    if override:
        return Path(override).expanduser()
    target = cache_dir() / "bin" / f"versitygw-{VERSITYGW_VERSION}"
    if target.exists():
        return target
    with file_lock(target.parent / f".versitygw-{VERSITYGW_VERSION}.lock"):
        if target.exists():
            return target  # built by a concurrent caller while we waited
        build_log = target.with_name(target.name + ".build.log")
        gobin = Path(tempfile.mkdtemp(prefix="versitygw-build-", dir=target.parent))
        t0 = time.monotonic()
        log(f"building versitygw {VERSITYGW_VERSION} (one-off, takes minutes; log: {build_log})")
        try:
            with build_log.open("w") as log_fh:
                proc = subprocess.run(
                    [find_go("versitygw", "FRAMEVAULT_VERSITYGW_BIN"), "install", "-trimpath", f"{VERSITYGW_MODULE}/cmd/versitygw@{VERSITYGW_VERSION}"],
                    cwd=tempfile.gettempdir(), env={**go_env(), "GOBIN": str(gobin)},
                    stdout=log_fh, stderr=subprocess.STDOUT, check=False,
                )
            if proc.returncode != 0 or not (gobin / "versitygw").exists():
                raise StackError(f"go install of versitygw failed (exit {proc.returncode}):\n{tail(build_log)}")
            os.replace(gobin / "versitygw", target)
        finally:
            shutil.rmtree(gobin, ignore_errors=True)
        log(f"versitygw build took {time.monotonic() - t0:.1f}s -> {target}")
        return target


class VersityS3:
    """versitygw serving a directory (posix backend) over S3 on loopback, with one bucket.

    A child of the process that starts it (the test session); not part of the default stack.
    """

    def __init__(self, data_dir: Path, port: int, access_key: str,
                 secret_key: str, bucket: str = DEFAULT_S3_BUCKET,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.timeout = timeout
        self._popen: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "versitygw.log"

    def _ready(self) -> bool:
        if self._popen is None or self._popen.poll() is not None:
            raise StackError(f"versitygw exited during startup\n--- tail of {self.log_path} ---\n{tail(self.log_path)}")
        if not port_open(self.port):
            return False
        from minio import Minio  # as in seaweedfs.py: the build command needs no S3 client

        client = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                        secure=False, region="us-east-1")
        if not client.bucket_exists(self.bucket):
            client.make_bucket(self.bucket)
        return True

    def start(self) -> Self:
        if port_open(self.port):
            raise StackError(f"port {self.port} on {LOOPBACK} is already in use")
        binary = ensure_versitygw()
        root = self.data_dir / "root"
        root.mkdir(parents=True, exist_ok=True)
        cmd = [str(binary), "--access", self.access_key, "--secret", self.secret_key,
               "--port", self.endpoint, "--quiet", "posix", str(root)]
        with self.log_path.open("ab") as logf:
            self._popen = subprocess.Popen(cmd, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=logf,
                                           stderr=subprocess.STDOUT, close_fds=True)
        try:
            wait_until(self._ready, self.timeout, f"versitygw S3 at {self.endpoint}", self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._popen is not None:
            terminate_pid(self._popen.pid, timeout=timeout, name="versitygw", popen=self._popen)
            self._popen.wait(timeout=5)
            self._popen = None

