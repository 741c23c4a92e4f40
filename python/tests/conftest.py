"""Helpers for the tests: the Rust binaries, real daemons on free loopback ports, and async
tests without plugins (a test that is a coroutine runs in its own event loop)."""

from __future__ import annotations

import asyncio
import inspect
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
try:
    import layer_cake_client  # noqa: F401 (installed: test what was installed)
except ImportError:
    sys.path.insert(0, str(REPO / "python" / "src"))

#: How long a test waits for any one thing.
WAIT = 10.0
#: A parent address where nothing listens, for daemons that must never connect upward.
NO_DIRECTORY = "127.0.0.1:1"


def pytest_pyfunc_call(pyfuncitem):  # noqa: D103 (a pytest hook)
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), 60))
        return True
    return None


_built = False


def bin_path(name: str) -> str:
    """A workspace binary (``LC_BIN_DIR``, else ``target/debug``), built once if missing."""
    global _built
    folder = Path(os.environ.get("LC_BIN_DIR", REPO / "target" / "debug"))
    path = folder / name
    if not path.exists() and not _built and "LC_BIN_DIR" not in os.environ:
        subprocess.run(["cargo", "build", "--workspace", "--bins", "--quiet"], cwd=REPO, check=True)
        _built = True
    if not path.exists():
        pytest.fail(f"no {path}: build the workspace first (cargo build --workspace --bins)")
    return str(path)


class Proc:
    """A process a test started; its stdout lines are read as they come. Killed at the end."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "LC_DEBUG_LEVEL": "warn", **(env or {})}
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=full_env, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    async def expect(self, *words: str, timeout: float = WAIT) -> str:
        """The next line that holds every one of ``words`` (earlier lines are kept in seen)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while True:
            left = until - loop.time()
            if left <= 0:
                raise AssertionError(f"no line with {words} within {timeout} s; saw {self.seen}")
            try:
                line = await asyncio.to_thread(self.lines.get, True, min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the process ended before a line with {words}; saw {self.seen}")
            self.seen.append(line)
            if all(w in line for w in words):
                return line

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(WAIT)


@pytest.fixture
def procs():
    """Starts processes for a test (``procs(args, env)``) and kills them all after it."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> Proc:
        p = Proc(args, env)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGCONT)
        p.kill()


class Daemon:
    """A directory daemon on a free loopback port."""

    def __init__(self, proc: Proc, addr: str) -> None:
        self.proc = proc
        self.addr = addr


async def start_daemon(procs, name: str, parent: str) -> Daemon:
    proc = procs([bin_path(name), "--listen", "127.0.0.1:0", "--connect-to-directory", parent])
    line = await proc.expect("listening ")
    return Daemon(proc, line.split()[-1])


@pytest.fixture
def host_cake(procs):
    """Starts host-cake (no LAN parent); ``await host_cake()`` gives it."""
    return lambda: start_daemon(procs, "host-cake", NO_DIRECTORY)


@pytest.fixture
def group_cake(procs):
    """Starts a group-cake under a directory; ``await group_cake(host.addr)`` gives it."""
    return lambda parent: start_daemon(procs, "group-cake", parent)
