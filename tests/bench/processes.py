"""The services under test as separate processes, and the clients that measure them.

Each service runs as ``python -m framevault.<service>`` with the local stack's
environment, the bench database and bucket, and free ports, exactly as it
would in production (one process per service). Client work runs in separate
processes too (``clients.py``), so the harness itself never competes with
what it measures for the GIL.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from framevault.stack import local
from framevault.stack import services as launcher
from framevault.stack.supervision import free_port

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
stack_env = local.stack_env
CLIENTS_SCRIPT = BENCH_DIR / "clients.py"
OUTPUT_DIR = REPO / ".bench"

# Names of this run's own: two runs at once (an A/B pair, another checkout's
# run) never drop each other's data.
RUN_ID = secrets.token_hex(5)
BENCH_DATABASE = f"fvbench_{RUN_ID}"
BENCH_BUCKET = f"fvbench-{RUN_ID}"

# A SIGTERM that arrives while a run stops its services or removes its data waits until that is done:
# raised in the middle, it left the other service running and the data behind.
_teardowns = 0
_deferred_signal: int | None = None


def exit_on_signal(signum: int, frame: object) -> None:
    """A run's SIGTERM handler: exits with 128 + ``signum``, once any ``teardown`` under way is done."""
    global _deferred_signal
    if _teardowns:
        _deferred_signal = signum
        return
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def teardown() -> Iterator[None]:
    """A block that ``exit_on_signal`` does not cut short; a stop signal that came meanwhile exits after it."""
    global _teardowns, _deferred_signal
    _teardowns += 1
    try:
        yield
    finally:
        _teardowns -= 1
        if not _teardowns and _deferred_signal is not None:
            signum, _deferred_signal = _deferred_signal, None
            raise SystemExit(128 + signum)


class ServiceProcess(launcher.ServiceProcess):
    """A service process as ``make run`` starts it, with the resources it uses."""

    def rss_bytes(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


def checkout_paths(services_dir: Path) -> list[Path]:
    """Import roots of the services in ``services_dir``: the directory itself and, when it is the
    ``services/`` of a checkout that ships the shared API package beside it (``clients/python-api``),
    that package's root too, so the services import the API code of their own commit."""
    api_root = services_dir.resolve().parent / "clients" / "python-api"
    return [services_dir, api_root] if (api_root / "framevault" / "api").is_dir() else [services_dir]


@dataclass
class Profiler:
    """How service processes are profiled: ``py-spy`` (sampling) or ``cprofile``, or not at all."""

    kind: str | None
    label: str
    outputs: list[Path] = field(default_factory=list)
    _samplers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, module: str, service: str, services_dir: Path | None = None) -> list[str]:
        if services_dir is not None:
            # Another checkout's services (a candidate change): its packages must win over the editable install.
            paths = [str(p) for p in checkout_paths(services_dir)]
            bootstrap = (f"import sys, runpy; sys.meta_path[:] = [f for f in sys.meta_path "
                         f"if 'editable' not in repr(f)]; sys.path[:0] = {paths!r}; "
                         f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
            if self.kind == "cprofile":
                raise SystemExit("--profile cprofile cannot be combined with --services-dir")
            return [sys.executable, "-c", bootstrap]
        if self.kind == "cprofile":
            path = OUTPUT_DIR / f"profile-{self.label}-{service}.pstats"
            self.outputs.append(path)
            return [sys.executable, "-m", "cProfile", "-o", str(path), "-m", module]
        return [sys.executable, "-m", module]

    def attach(self, service: ServiceProcess) -> None:
        if self.kind != "py-spy":
            return
        path = OUTPUT_DIR / f"profile-{self.label}-{service.name}.txt"
        self.outputs.append(path)
        py_spy = Path(sys.executable).with_name("py-spy")
        self._samplers.append(subprocess.Popen(
            [str(py_spy), "record", "--pid", str(service.pid), "--format", "raw", "--rate", "200",
             "--output", str(path), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=(OUTPUT_DIR / f"py-spy-{service.name}.log").open("wb")))

    def finish(self) -> None:
        for sampler in self._samplers:
            if sampler.poll() is None:
                sampler.send_signal(signal.SIGINT)
        for sampler in self._samplers:
            try:
                sampler.wait(30)
            except subprocess.TimeoutExpired:
                sampler.kill()
        self._samplers.clear()


@dataclass
class Services:
    """A metadata service and a blob service wired to each other, and any further metadata replicas
    (same database, bucket and blob service; ``metadata_replicas[0]`` is ``metadata``)."""

    metadata: ServiceProcess
    blob: ServiceProcess
    driver: str
    metadata_replicas: list[ServiceProcess] = field(default_factory=list)
    # What client processes need to reach these services (``client_channels``); empty = plaintext.
    client_env: dict[str, str] = field(default_factory=dict)

    def all(self) -> tuple[ServiceProcess, ...]:
        return (*(self.metadata_replicas or [self.metadata]), self.blob)

    def rss_bytes(self) -> int:
        return sum(s.rss_bytes() for s in self.all())


@contextlib.contextmanager
def running_services(base_env: Mapping[str, str], *, driver: str, profiler: Profiler,
                     services_dir: Path | None = None, metadata_replicas: int = 1,
                     secure: bool = True) -> Iterator[Services]:
    """Starts both services (``metadata_replicas`` metadata processes), waits until they serve, stops them on exit.

    ``secure`` (the default, as the product's): the services serve mutual TLS with the local CA and
    check an API key on every call (``security_mode=on``); their clients present the local client
    certificate and the bootstrap admin key, from ``Services.client_env`` (see ``clients_of``).
    ``secure=False``, the comparison of row P10: plaintext and security off (local-dev, set explicitly).
    """
    metadata_address = f"127.0.0.1:{free_port()}"
    blob_address = f"127.0.0.1:{free_port()}"
    pki = local.Stack().pki() if secure else None
    admin_key_file = OUTPUT_DIR / f"admin-key-{profiler.label}"
    env = {
        **os.environ,
        **({"FRAMEVAULT_ALLOW_PLAINTEXT": "false", "FRAMEVAULT_SECURITY_MODE": "on",
            "FRAMEVAULT_BOOTSTRAP_ADMIN_KEY_FILE": str(admin_key_file)} if secure
           else {"FRAMEVAULT_ALLOW_PLAINTEXT": "true", "FRAMEVAULT_SECURITY_MODE": "local-dev"}),
        **base_env,
        "FRAMEVAULT_MONGODB_DATABASE": BENCH_DATABASE,
        "FRAMEVAULT_S3_BUCKET": BENCH_BUCKET,
        "FRAMEVAULT_MONGODB_DRIVER": driver,
        "FRAMEVAULT_METADATA_ADDRESS": metadata_address,
        "FRAMEVAULT_BLOB_ADDRESS": blob_address,
        "FRAMEVAULT_METADATA_TARGET": metadata_address,
        "FRAMEVAULT_BLOB_TARGET": blob_address,
        "FRAMEVAULT_LOG_LEVEL": os.environ.get("FRAMEVAULT_BENCH_LOG_LEVEL", "WARNING"),
    }
    OUTPUT_DIR.mkdir(exist_ok=True)
    admin_key_file.unlink(missing_ok=True)

    def service_env(name: str) -> dict[str, str]:
        return {**env, **pki.service_env(name)} if pki is not None else env

    started: list[ServiceProcess] = []
    try:
        for name in launcher.SERVICE_NAMES:
            log_path = OUTPUT_DIR / f"{name}-{profiler.label}.log"
            log_path.unlink(missing_ok=True)
            started.append(ServiceProcess.start(
                name, service_env(name), command=profiler.command(launcher.MODULES[name], name, services_dir),
                stdout=subprocess.DEVNULL, log_path=log_path))
        for replica in range(1, metadata_replicas):
            address = f"127.0.0.1:{free_port()}"
            started.append(ServiceProcess.start(
                "metadata", {**service_env("metadata"), "FRAMEVAULT_METADATA_ADDRESS": address,
                             "FRAMEVAULT_METADATA_METRICS_ADDRESS": ""},
                command=profiler.command(launcher.MODULES["metadata"], f"metadata-{replica}", services_dir),
                stdout=subprocess.DEVNULL, log_path=OUTPUT_DIR / f"metadata-{replica}-{profiler.label}.log"))
        for service in started:
            service.wait_serving()
        for service in started:
            profiler.attach(service)
        client_env = {**pki.client_env(), "FRAMEVAULT_TOKEN": admin_key_file.read_text().strip()} if pki else {}
        blob, metadata, *more_metadata = started
        yield Services(metadata=metadata, blob=blob, driver=driver, metadata_replicas=[metadata, *more_metadata],
                       client_env=client_env)
    finally:
        with teardown():
            profiler.finish()
            for service in reversed(started):
                service.stop()


# What every client reads to reach the services of a phase (``client_channels``).
CLIENT_SECURITY_VARIABLES = ("FRAMEVAULT_CA_FILE", "FRAMEVAULT_CLIENT_CERT_FILE", "FRAMEVAULT_CLIENT_KEY_FILE",
                             "FRAMEVAULT_TOKEN")


@contextlib.contextmanager
def clients_of(services: Services) -> Iterator[None]:
    """Within the block, clients (the client processes inherit this process's environment, and the
    harness's own channels) reach ``services``: with their TLS files and token, or in plaintext."""
    saved = {name: os.environ.pop(name) for name in CLIENT_SECURITY_VARIABLES if name in os.environ}
    os.environ.update(services.client_env)
    try:
        yield
    finally:
        for name in CLIENT_SECURITY_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(saved)


def run_client(job: str, **params: Any) -> dict[str, Any]:
    """Runs one ``clients.py`` job in its own process; returns its JSON result."""
    completed = subprocess.run([sys.executable, str(CLIENTS_SCRIPT), job, json.dumps(params)],
                               cwd=REPO, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"client job {job} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def start_clients(job: str, count: int, **params: Any) -> list[subprocess.Popen[str]]:
    """Starts ``count`` processes of one job (each gets its ``worker`` number)."""
    return [subprocess.Popen([sys.executable, str(CLIENTS_SCRIPT), job, json.dumps({**params, "worker": n})],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(count)]


def collect_clients(processes: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    results = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"client process failed ({process.returncode}):\n{err[-4000:]}")
        results.append(dict(json.loads(out.strip().splitlines()[-1])))
    return results


class RssSampler:
    """Samples the resident memory of service processes every ``interval`` seconds."""

    def __init__(self, services: Services, interval: float = 0.1):
        self._services = services
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[tuple[float, int, int]] = []  # (t, metadata rss, blob rss)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.monotonic() - start, self._services.metadata.rss_bytes(),
                                     self._services.blob.rss_bytes()))
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
