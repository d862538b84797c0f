"""The end-to-end tier's slow builds, started in the background once the session knows it needs them.

Building the generated clients (javac over the generated Java classes, tsc over the TypeScript ones,
the Go test binary) and the SDK wheels' two fresh virtual environments (wheels, then a pip install
each from the package index) takes minutes, most of it on one core or waiting for the network,
while the tests before them use little more than one core. So they start when collection ends
(``start_needed``) and run beside the earlier tiers; each test that needs one waits for it
(``Prebuilds.result``) and then does only its own step, against the services, as before. A failed
build fails the tests that need it with the build's output, as a failed step inside the test did.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from framevault.stack.settings import REPO_ROOT

CLIENTS = REPO_ROOT / "clients"
GO_CLIENT = CLIENTS / "go"
TYPESCRIPT_CLIENT = CLIENTS / "typescript"
JAVA_CLIENT = CLIENTS / "java"

# A first build downloads the toolchains' dependencies; later builds are quick.
BUILD_TIMEOUT_SECONDS = 900


class BuildFailed(Exception):
    """A step of a build exited with an error or did not finish in time; the message has its output."""


@dataclass
class Build:
    """Steps run one after another in a thread; ``wait`` returns what the last one printed or raises."""

    name: str
    steps: Callable[[Build], str]
    _thread: threading.Thread | None = None
    _output: str = ""
    _error: BaseException | None = None
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: bool = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"prebuild-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._output = self.steps(self)
        except BaseException as exc:  # noqa: BLE001 - handed to the test that waits for it
            self._error = exc

    def run(self, command: Sequence[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: float = BUILD_TIMEOUT_SECONDS) -> str:
        """Runs one step to completion and returns its output; raises BuildFailed on a non-zero exit."""
        if shutil.which(command[0]) is None:
            raise BuildFailed(f"{command[0]} is not installed: {self.name} cannot be built")
        with tempfile.TemporaryFile() as output:
            with self._lock:
                if self._stopped:
                    raise BuildFailed(f"{self.name}: the session ended before {' '.join(command)} ran")
                process = subprocess.Popen(list(command), cwd=cwd, env=os.environ.copy() if env is None else env,
                                           stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                           start_new_session=True)
                self._processes.append(process)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise BuildFailed(f"{' '.join(command)} in {cwd} ran longer than {timeout:.0f} s") from None
            output.seek(0)
            text = output.read().decode(errors="replace")
        if process.returncode != 0:
            raise BuildFailed(f"{' '.join(command)} in {cwd} exited with {process.returncode}:\n{text}")
        return text

    def wait(self) -> str:
        assert self._thread is not None, f"{self.name} was never started"
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._output

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for process in self._processes:
                if process.poll() is None:
                    _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Stops a step and everything it started (maven's JVM, npm's node)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


# ---- the builds -------------------------------------------------------------------------------------


def node_modules_current() -> bool:
    """npm records the installed tree in node_modules/.package-lock.json."""
    installed = TYPESCRIPT_CLIENT / "node_modules" / ".package-lock.json"
    lock = TYPESCRIPT_CLIENT / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def maven_resolved_stamp() -> Path:
    """Marks a local Maven repository that already holds everything this pom needs."""
    pom_hash = hashlib.sha256((JAVA_CLIENT / "pom.xml").read_bytes()).hexdigest()[:16]
    return JAVA_CLIENT / "target" / f".dependencies-resolved-{pom_hash}"


def maven_offline() -> list[str]:
    return ["-o"] if maven_resolved_stamp().exists() else []


def build_go_client(build: Build) -> str:
    # Compiles the packages and the end-to-end test binary into Go's build cache (running no test),
    # so the test's own `go test` only links and runs it.
    return build.run(["go", "test", "-count=1", "-run", "^$", "./..."], GO_CLIENT)


def build_typescript_client(build: Build) -> str:
    if not node_modules_current():
        build.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], TYPESCRIPT_CLIENT)
    return build.run(["npm", "run", "build"], TYPESCRIPT_CLIENT)


def build_java_client(build: Build) -> str:
    # Main and test classes; the test's `mvn test` then finds them up to date and only runs the test.
    return build.run(["mvn", "-q", "-B", *maven_offline(), "test-compile"], JAVA_CLIENT)


# ---- the session's builds --------------------------------------------------------------------------


# What a test module needs built: ``BACKGROUND_BUILDS = {name: steps}`` at its top level.
BUILDS_ATTRIBUTE = "BACKGROUND_BUILDS"


class Prebuilds:
    """The builds the collected tests need, by name, each started once per session."""

    def __init__(self) -> None:
        self.builds: dict[str, Build] = {}
        self._scratch: list[Path] = []

    def start(self, name: str, steps: Callable[[Build], str]) -> None:
        if name not in self.builds:
            self.builds[name] = Build(name, steps)
            self.builds[name].start()

    def start_needed(self, items: Sequence[pytest.Item]) -> None:
        """Starts the builds the modules of ``items`` name (the tests a session is about to run)."""
        for module in {item.module for item in items if isinstance(item, pytest.Function)}:
            for name, steps in getattr(module, BUILDS_ATTRIBUTE, {}).items():
                self.start(name, steps)

    def result(self, name: str, steps: Callable[[Build], str]) -> str:
        """What build ``name`` printed, waiting for it (started now if collection did not start it);
        fails the test with the build's output when it failed."""
        self.start(name, steps)
        try:
            return self.builds[name].wait()
        except BuildFailed as exc:
            pytest.fail(str(exc))

    def scratch(self, name: str) -> Path:
        """A folder of a build's own, removed when the session ends."""
        folder = Path(tempfile.mkdtemp(prefix=f"framevault-{name.replace(' ', '-')}-"))
        self._scratch.append(folder)
        return folder

    def stop_all(self) -> None:
        """At the end of the session: stops what still runs, removes the builds' folders."""
        for build in self.builds.values():
            build.stop()
        for build in self.builds.values():
            if build._thread is not None:
                build._thread.join(60)
        for folder in self._scratch:
            shutil.rmtree(folder, ignore_errors=True)


PREBUILDS = Prebuilds()
