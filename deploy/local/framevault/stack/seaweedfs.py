"""SeaweedFS's S3 gateway (``weed``), built once from its pinned Go module and cached."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from .gobuild import find_go, go_env
from .settings import (
    DEFAULT_S3_BUCKET,
    DEFAULT_S3_PORT,
    DEFAULT_TIMEOUT,
    DEFAULT_WEED_FILER_PORT,
    DEFAULT_WEED_GRPC_OFFSET,
    DEFAULT_WEED_MASTER_PORT,
    DEFAULT_WEED_VOLUME_PORT,
    LOOPBACK,
    cache_dir,
    stack_dir,
)
from .supervision import StackError, file_lock, log, port_open, read_pid, tail, terminate_pid, wait_until

if TYPE_CHECKING:
    from minio import Minio

WEED_MODULE = "github.com/seaweedfs/seaweedfs"
WEED_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"


def _find_go() -> str:
    return find_go("SeaweedFS", "FRAMEVAULT_WEED_BIN")


def weed_path() -> Path:
    return cache_dir() / "bin" / f"weed-{WEED_VERSION}"



def _module_dir(go: str, log_fh: IO[str]) -> Path:
    cmd = [go, "mod", "download", "-json", f"{WEED_MODULE}@{WEED_VERSION}"]
    proc = subprocess.run(
        cmd,
        cwd=tempfile.gettempdir(),
        env=go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    log_fh.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n")
    log_fh.flush()
    info: dict[str, Any] = {}
    with contextlib.suppress(json.JSONDecodeError):
        info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or not info.get("Dir"):
        raise StackError(
            f"`go mod download {WEED_MODULE}@{WEED_VERSION}` failed: {info.get('Error') or proc.stderr.strip()[-2000:]}"
        )
    return Path(info["Dir"])


def _same_tree(a: Path, b: Path) -> bool:
    """Cheap check that two SeaweedFS source trees are the same module version."""
    names = ("go.mod", "go.sum", "weed/util/version/constants.go")
    try:
        return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    except OSError:
        return False


def ensure_weed(force_build: bool = False) -> Path:
    """Return a usable ``weed`` binary of WEED_VERSION, building it once if needed.

    Order: $FRAMEVAULT_WEED_BIN; the cached ``<cache>/bin/weed-<version>``; a
    pre-built ``<cache>/build/weed`` whose ``<cache>/build/src`` tree matches the
    pinned module (copied into the cache); otherwise ``go mod download`` + copy
    the module source to a temp dir + ``go build -o <cache>/bin/weed-<version> ./weed``.
    (``go install pkg@version`` cannot be used: SeaweedFS's go.mod has replace
    directives.)
    """
    override = os.environ.get("FRAMEVAULT_WEED_BIN", "").strip()
    if override and not force_build:
        p = Path(override).expanduser()
        if not os.access(p, os.X_OK):
            raise StackError(f"FRAMEVAULT_WEED_BIN={p} is not an executable file")
        return p

    target = weed_path()
    if target.exists() and not force_build:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".weed-{WEED_VERSION}.lock"):
        if target.exists() and not force_build:
            return target  # built by a concurrent caller while we waited
        build_log = target.parent / f"weed-{WEED_VERSION}.build.log"
        go = _find_go()
        t0 = time.monotonic()
        with build_log.open("w") as log_fh:
            mod_dir = _module_dir(go, log_fh)

            prebuilt = cache_dir() / "build" / "weed"
            if not force_build and prebuilt.exists() and _same_tree(cache_dir() / "build" / "src", mod_dir):
                tmp_target = target.with_name(target.name + ".tmp")
                shutil.copy2(prebuilt, tmp_target)
                tmp_target.chmod(0o755)
                os.replace(tmp_target, target)
                log(f"reused pre-built weed {prebuilt} (same source as {WEED_VERSION}) -> {target}")
                return target

            log(f"building SeaweedFS {WEED_VERSION} with {go} (one-off, takes minutes; log: {build_log})")
            work = Path(tempfile.mkdtemp(prefix="weed-build-", dir=target.parent))
            try:
                src = work / "src"
                shutil.copytree(mod_dir, src, symlinks=True)
                subprocess.run(["chmod", "-R", "u+w", str(src)], check=True)
                out = work / "weed"
                cmd = [go, "build", "-trimpath", "-o", str(out), "./weed"]
                log_fh.write(f"$ (cd {src} && {' '.join(cmd)})\n")
                log_fh.flush()
                proc = subprocess.run(
                    cmd,
                    cwd=src,
                    env=go_env(),
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                if proc.returncode != 0 or not out.exists():
                    log_fh.flush()
                    raise StackError(f"go build of weed failed (exit {proc.returncode}):\n{tail(build_log)}")
                os.replace(out, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        log(f"weed build took {time.monotonic() - t0:.1f}s -> {target}")
        return target


class SeaweedS3:
    """SeaweedFS with its S3 gateway on loopback, static S3 credentials and a bucket.

    Two processes, so that shutdown can go in dependency order:

    * ``server``: ``weed server -volume=false -filer -s3`` (master + filer + S3 gateway)
    * ``volume``: ``weed volume`` (blob storage)

    In a single ``weed server`` the volume server stops before the filer, whose
    final metadata-log flush then retries against a missing volume server for
    its whole 15 s budget; stopping ``server`` first and ``volume`` last gives a
    clean stop in ~1 s. Layout under ``data_dir``: ``master+filer/`` and
    ``volume/`` (data), ``s3.json`` (identities), ``weed-server.log``,
    ``weed-volume.log`` and matching ``.pid`` files. Processes run in their own
    session so they outlive the Python process that started them.
    """

    PROCS = ("server", "volume")

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        data_dir: Path | str | None = None,
        s3_port: int = DEFAULT_S3_PORT,
        master_port: int = DEFAULT_WEED_MASTER_PORT,
        volume_port: int = DEFAULT_WEED_VOLUME_PORT,
        filer_port: int = DEFAULT_WEED_FILER_PORT,
        grpc_offset: int = DEFAULT_WEED_GRPC_OFFSET,
        bucket: str | None = DEFAULT_S3_BUCKET,
        host: str = LOOPBACK,
        weed_bin: Path | str | None = None,
        volume_size_limit_mb: int = 64,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.data_dir = (Path(data_dir) if data_dir is not None else stack_dir() / "weed").resolve()
        self.s3_port = int(s3_port)
        self.master_port = int(master_port)
        self.volume_port = int(volume_port)
        self.filer_port = int(filer_port)
        self.grpc_offset = int(grpc_offset)
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.host = host
        self._weed = Path(weed_bin) if weed_bin else None
        self.volume_size_limit_mb = volume_size_limit_mb
        self.timeout = timeout
        self._popen: dict[str, subprocess.Popen] = {}

    # ---- addressing -------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """host:port of the S3 API (plain HTTP)."""
        return f"{self.host}:{self.s3_port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def log_file(self, proc: str = "server") -> Path:
        return self.data_dir / f"weed-{proc}.log"

    @property
    def log_path(self) -> Path:
        """Log of the master+filer+S3 process."""
        return self.log_file("server")

    def pid_file(self, proc: str = "server") -> Path:
        return self.data_dir / f"weed-{proc}.pid"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "s3.json"

    def all_ports(self) -> list[int]:
        http = [self.master_port, self.volume_port, self.filer_port, self.s3_port]
        return http + [p + self.grpc_offset for p in http]

    def pid(self, proc: str = "server") -> int | None:
        popen = self._popen.get(proc)
        if popen is not None and popen.poll() is None:
            return popen.pid  # our own child: no pid file / cmdline round trip needed
        return read_pid(self.pid_file(proc), f"-dir={self.data_dir}/")

    def pids(self) -> dict[str, int]:
        return {proc: pid for proc in self.PROCS if (pid := self.pid(proc))}

    def is_running(self) -> bool:
        return len(self.pids()) == len(self.PROCS)

    def client(self, **kwargs: Any) -> Minio:
        """A minio.Minio client for this server (plain HTTP, region us-east-1)."""
        # Imported here, as pymongo in mongo.py: `framevault-stack env` and the builds need no S3 client.
        from minio import Minio

        kwargs.setdefault("secure", False)
        kwargs.setdefault("region", "us-east-1")
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, **kwargs)

    # ---- configuration ------------------------------------------------------

    def _write_config(self, *former: tuple[str, str]) -> None:
        """The S3 identity: this server's credentials, and ``former`` ones that still work."""
        credentials = [(self.access_key, self.secret_key), *former]
        config = {
            "identities": [
                {
                    "name": "framevault",
                    "credentials": [{"accessKey": access, "secretKey": secret} for access, secret in credentials],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, self.config_path)

    def replace_credentials(self, access_key: str, secret_key: str) -> None:
        """Has the running S3 gateway accept ``access_key``/``secret_key`` without a restart (it reads
        its identities again on SIGHUP). The former credentials keep working until it restarts, so
        clients that hold them (a test session in flight) are not cut off."""
        former = (self.access_key, self.secret_key)
        self.access_key, self.secret_key = access_key, secret_key
        self._write_config(former)
        pid = self.pid("server")
        if pid is None:
            raise StackError("weed server is not running")
        os.kill(pid, signal.SIGHUP)
        self._wait_ready()

    def _sock(self, name: str) -> list[str]:
        # keep unix sockets next to the data instead of /tmp when the path fits (sun_path is 108 bytes)
        sock = self.data_dir / name
        return [str(sock)] if len(str(sock)) < 100 else []

    def commands(self, weed: Path | str) -> dict[str, list[str]]:
        g = self.grpc_offset
        server = [
            str(weed),
            "-logtostderr=true",
            "server",
            f"-dir={self.data_dir / 'master+filer'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-volume=false",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_port + g}",
            "-master.peers=none",  # single-master mode: instant raft leadership, also on restart
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-master.telemetry=false",
            "-filer",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_port + g}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={self.s3_port + g}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",  # no IAM API; identities come from the static -s3.config file
            f"-s3.config={self.config_path}",
        ]
        server += [f"-filer.localSocket={s}" for s in self._sock("filer.sock")]
        server += [f"-s3.localSocket={s}" for s in self._sock("s3.sock")]
        volume = [
            str(weed),
            "-logtostderr=true",
            "volume",
            f"-dir={self.data_dir / 'volume'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-port={self.volume_port}",
            f"-port.grpc={self.volume_port + g}",
            f"-master={self.host}:{self.master_port}.{self.master_port + g}",
            "-max=0",  # auto: free disk space / volume size limit
            "-preStopSeconds=0",
        ]
        return {"server": server, "volume": volume}

    # ---- lifecycle ------------------------------------------------------------

    def _ready(self) -> bool:
        """True once a signed round trip (bucket ensure + put/get/delete) works."""
        for proc in self.PROCS:
            if self.pid(proc) is None:
                raise StackError(
                    f"weed {proc} exited during startup\n--- tail of {self.log_file(proc)} ---\n"
                    f"{tail(self.log_file(proc))}"
                )
        if not port_open(self.s3_port, self.host):
            return False
        # short timeouts, no client-side retries: the poll loop is the retry
        import urllib3

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=10), retries=False)
        try:
            c = self.client(http_client=http)
            bucket = self.bucket or "framevault-readiness"
            if not c.bucket_exists(bucket):
                c.make_bucket(bucket)
            # a write proves master, volume server and filer are all wired up
            key = ".framevault-stack-readiness"
            c.put_object(bucket, key, io.BytesIO(b"ok"), 2)
            resp = c.get_object(bucket, key)
            try:
                ok = resp.read() == b"ok"
            finally:
                resp.close()
                resp.release_conn()
            c.remove_object(bucket, key)
            if not self.bucket:
                c.remove_bucket(bucket)
            return ok
        finally:
            http.clear()

    def _wait_ready(self) -> None:
        wait_until(self._ready, self.timeout, f"SeaweedFS S3 at {self.endpoint}", self.log_path)

    def _spawn(self, proc: str, cmd: list[str]) -> None:
        with self.log_file(proc).open("ab") as logf:
            logf.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            logf.flush()
            popen = subprocess.Popen(
                cmd,
                cwd=self.data_dir,  # weed also reads *.toml from the cwd; keep it ours
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survive the CLI exiting / terminal signals
                close_fds=True,
            )
        self._popen[proc] = popen
        self.pid_file(proc).write_text(f"{popen.pid}\n")

    def start(self) -> Self:
        """Start weed (no-op if running), wait until S3 works, ensure the bucket. Idempotent."""
        running = self.pids()
        if len(running) == len(self.PROCS):
            self._wait_ready()
            return self
        if running:  # half running (e.g. one process crashed): restart cleanly
            self.stop()
        busy = [p for p in self.all_ports() if port_open(p, self.host)]
        if busy:
            raise StackError(
                f"ports {busy} on {self.host} are already in use; pick other ports "
                "(FRAMEVAULT_STACK_S3_PORT, FRAMEVAULT_STACK_WEED_{MASTER,VOLUME,FILER}_PORT, "
                "FRAMEVAULT_STACK_WEED_GRPC_OFFSET)"
            )
        weed = self._weed or ensure_weed()
        self._weed = weed
        for sub in ("master+filer", "volume"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self._write_config()
        cmds = self.commands(weed)
        try:
            for proc in self.PROCS:
                self._spawn(proc, cmds[proc])
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _stop_proc(self, proc: str, timeout: float, sig: int = signal.SIGTERM) -> None:
        pid = self.pid(proc)
        popen = self._popen.pop(proc, None)
        if pid:
            terminate_pid(pid, timeout=timeout, sig=sig, name=f"weed {proc}", popen=popen)
        if popen is not None:
            with contextlib.suppress(Exception):
                popen.wait(timeout=5)
        self.pid_file(proc).unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM master+filer+S3, wait; then the volume server. SIGKILL after ``timeout`` each."""
        for proc in self.PROCS:
            self._stop_proc(proc, timeout)

    def kill(self) -> None:
        """SIGKILL all weed processes (simulated crash)."""
        for proc in self.PROCS:
            self._stop_proc(proc, 15, sig=signal.SIGKILL)

    def purge(self) -> None:
        if self.pids():
            raise StackError("stop SeaweedFS before purging its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

