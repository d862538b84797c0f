"""Process supervision: polling against deadlines, pid files, stopping processes, loopback ports, file locks.

There are no fixed sleeps: every wait polls a condition against a deadline and
fails with the tail of the relevant server log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Supervised servers listen here only.
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """Raised when a component cannot be started, reached or stopped."""


def log(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


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



def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
