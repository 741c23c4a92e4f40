"""A composite of the Rust multihosting server and eight Python workers, run by the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import REPO, WAIT, bin_path


class Home:
    """A home folder in ``folder``, driven with the ``layer-cake`` CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if k not in ("LC_HOME", "LC_DIRECTORY")}
        self.env["LC_DEBUG_LEVEL"] = "warn"
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "python" / "src"), self.env.get("PYTHONPATH", "")]
        )

    def run(self, *args: str) -> str:
        out = subprocess.run(
            [bin_path("layer-cake"), *args], cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, f"layer-cake {args} failed: {out.stdout}{out.stderr}"
        return out.stdout

    def wait_for(self, what: str, done) -> None:
        until = time.monotonic() + WAIT
        while not done():
            assert time.monotonic() < until, f"timed out waiting for {what}"
            time.sleep(0.02)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def test_eight_python_workers_serve_the_rust_server_and_a_killed_one_loses_no_request(tmp_path):
    home = Home(tmp_path)
    home.run("create", "--directory-at-host", "127.0.0.1:1", "--retry", '{"min": 0, "max": 0.1}')
    home.run("add", bin_path("multihosting-server"), "server", "--", "--listen", "127.0.0.1:0")
    home.run("add", str(REPO / "python" / "demos" / "worker.py"), "worker", "--role-count=8")
    home.run("start")
    try:
        url = ""

        def listening() -> bool:
            nonlocal url
            for line in home.run("log", "server", "--count", "1000").splitlines():
                if " listening " in line:
                    url = f"http://{line.split(' listening ')[1].strip()}/Xy?x=3&y=2"
            return bool(url)

        home.wait_for("the server to listen", listening)
        # Every worker serves: 8 distinct sessions opened (each worker prints `serving`).
        home.wait_for("a worker to serve", lambda: get(url)[0] == 200)
        status, body = get(url)
        reply = json.loads(body)
        assert status == 200 and reply["type"] == "Table", body
        assert len(reply["value"]) == 3 and all(len(row) == 2 for row in reply["value"]), body

        roles = {r["role"]: r["pid"] for r in json.loads(home.run("status", "--json"))["roles"]}
        assert len([r for r in roles if r.startswith("worker-")]) == 8, roles
        victim = roles["worker-1"]

        results: list[tuple[int, str, float]] = []
        stop = threading.Event()
        answered = threading.Semaphore(0)

        def load() -> None:
            for _ in range(2000):  # bounded
                if stop.is_set():
                    return
                started = time.monotonic()
                status, body = get(url)
                results.append((status, body, time.monotonic() - started))
                answered.release()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in range(50):
            assert answered.acquire(timeout=WAIT), "requests are answered"
        os.kill(victim, signal.SIGKILL)

        def restarted() -> bool:
            roles = json.loads(home.run("status", "--json"))["roles"]
            w = next(r for r in roles if r["role"] == "worker-1")
            return w["restarts"] == 1 and w["state"] == "running" and w["pid"] != victim

        home.wait_for("worker-1 to be restarted", restarted)
        for _ in range(50):
            assert answered.acquire(timeout=WAIT), "requests are answered after the kill"
        stop.set()
        for t in threads:
            t.join(WAIT)
        failed = [(s, b) for s, b, _ in results if s != 200]
        assert not failed, f"{len(failed)} of {len(results)} failed: {failed[:3]}"
        assert max(took for _, _, took in results) < 5.0
        assert len(results) > 100
    finally:
        home.run("stop")
