"""The default local stack under settings.stack_dir(): one MongoDB replica set, one SeaweedFS, the local PKI.

This is what the ``framevault-stack`` command manages and what ``make run``, the
tests and the benchmark read their backend settings from (``stack_env``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .mongo import MongoReplicaSet
from .pki import LocalPki, ensure_local_pki
from .seaweedfs import SeaweedS3, ensure_weed
from .secrets import LEGACY_S3_SECRET_KEY, SECRETS_FILE, ensure_stack_secrets
from .settings import StackConfig
from .supervision import StackError, file_lock, log, port_open, read_pid, terminate_pid


def stack_env() -> dict[str, str]:
    """The ``FRAMEVAULT_*`` backend settings of the local stack (``framevault-stack env``)."""
    return Stack().env()


def start_stack() -> dict[str, str]:
    """Starts the local stack if it is not running (``framevault-stack up``) and returns ``stack_env()``.

    ``up`` runs as its own process, so the servers it starts are never children of the caller.
    """
    subprocess.run([sys.executable, "-m", "framevault.stack", "up"], check=True)
    return stack_env()


class Stack:
    """The default local stack under stack_dir(): one replica set + one SeaweedFS, and the local PKI.

    Mongo data lives in ``<stack>/mongo/rs<N>/<port>/`` so a 1-node and a
    3-node set never share (incompatible) data. While anything runs, the
    settings of the last ``up`` (saved in ``<stack>/state.json``) win over the
    environment, so ``down``/``status``/``env`` address what actually runs.
    """

    def __init__(self, config: StackConfig | None = None, mongo_nodes: int | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self.dir = self.config.dir
        cfg = self.config
        # The S3 credentials this stack's SeaweedFS should use (a running one may still use others).
        self._s3_credentials = (cfg.s3_access_key, cfg.s3_secret_key)
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
            cfg.s3_access_key,
            cfg.s3_secret_key,
            data_dir=self.dir / "weed",
            s3_port=cfg.s3_port,
            master_port=cfg.weed_master_port,
            volume_port=cfg.weed_volume_port,
            filer_port=cfg.weed_filer_port,
            grpc_offset=cfg.weed_grpc_offset,
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

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.dir / ".lock")

    # ---- commands -------------------------------------------------------------

    def pki(self) -> LocalPki:
        """The local CA and certificates under ``<stack>/tls/``, created or renewed as needed."""
        return ensure_local_pki(self.dir / "tls")

    def secrets(self) -> dict[str, str]:
        """The stack's own secrets by setting name (``<stack>/secrets.json``, made on first use)."""
        return ensure_stack_secrets(self.dir)

    def env(self) -> dict[str, str]:
        """The backend settings of both services and the secrets they need with security on."""
        own = self.secrets()
        return {
            "FRAMEVAULT_MONGODB_URI": self.mongo.uri,
            "FRAMEVAULT_S3_ENDPOINT": self.s3.endpoint,
            "FRAMEVAULT_S3_ACCESS_KEY": self.s3.access_key,
            "FRAMEVAULT_S3_SECRET_KEY": self.s3.secret_key,
            "FRAMEVAULT_S3_BUCKET": self.s3.bucket or "",
            "FRAMEVAULT_S3_SECURE": "false",
            **{f"FRAMEVAULT_{name.upper()}": own[name] for name in
               ("view_cursor_secret", "api_key_pepper", "service_token_secret", "gateway_session_secret")},
        }

    def _replace_public_s3_credentials(self) -> None:
        """A SeaweedFS started before the stack made its own secrets runs with the S3 credentials
        every checkout shared; it takes the stack's own, without a restart."""
        if self.s3.secret_key != LEGACY_S3_SECRET_KEY or self._s3_credentials[1] == LEGACY_S3_SECRET_KEY:
            return
        self.s3.replace_credentials(*self._s3_credentials)
        log(f"seaweedfs s3 now uses the stack's own credentials ({self.dir / SECRETS_FILE}); "
            "the former public ones work until it restarts")

    def up(self, mongo: bool = True, s3: bool = True) -> None:
        """Start the selected components; already running ones are left alone."""
        with self.lock():
            if mongo:
                mine = {self.mongo.pid_file(p) for p in self.mongo.ports}
                foreign = [f for f in self._running_mongods() if f not in mine]
                if foreign:
                    raise StackError(
                        f"another replica set of this stack is running ({', '.join(str(f.parent) for f in foreign)}); "
                        "run `framevault-stack down` first to change --mongo-nodes or ports"
                    )
            if s3 and self.s3.is_running():
                self._replace_public_s3_credentials()
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
                shutil.rmtree(self.dir / "tls", ignore_errors=True)
                (self.dir / SECRETS_FILE).unlink(missing_ok=True)
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

