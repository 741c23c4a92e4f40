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
    # (A role's environment is its own: the client's path is given to it.)
    home.run(
        "add", str(REPO / "python" / "demos" / "worker.py"), "worker", "--role-count=8",
        "--env", f"PYTHONPATH={REPO / 'python' / 'src'}",
    )
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

        # Each Python worker shows its role in the tree, and a search by role finds it.
        home.wait_for("worker-3 in the tree", lambda: "worker.py as worker-3 (" in home.run("network", "worker-3"))
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


async def test_the_python_server_spreads_over_rust_and_python_workers(procs, host_cake):
    import asyncio
    import sys

    host = await host_cake()
    env = {"LC_DIRECTORY": host.addr, "PYTHONPATH": str(REPO / "python" / "src")}
    demos = REPO / "python" / "demos"
    workers = [procs([bin_path("multihosting-worker")], env) for _ in range(2)]
    workers += [procs([sys.executable, str(demos / "worker.py")], env) for _ in range(2)]
    for w in workers:
        await w.expect("published", "test-multihosting:worker-10:")
    server = procs([sys.executable, str(demos / "server.py"), "--listen", "127.0.0.1:0"], env)
    addr = (await server.expect("listening ")).split()[-1]
    for w in workers:
        await w.expect("serving", "server.py")  # every worker, Rust or Python, has a session
    base = f"http://{addr}"
    statuses = await asyncio.gather(*(asyncio.to_thread(get, f"{base}/Xy?x=2&y=3") for _ in range(40)))
    assert all(s == 200 for s, _ in statuses), statuses[:3]
    reply = json.loads(statuses[0][1])
    assert reply["type"] == "Table" and len(reply["value"]) == 2 and len(reply["value"][0]) == 3
    assert (await asyncio.to_thread(get, f"{base}/Xy?x=two&y=3"))[0] == 400
    assert (await asyncio.to_thread(get, f"{base}/Nope"))[0] == 404
    # A Python worker killed: the requests after it go to the others.
    workers[2].popen.kill()
    statuses = await asyncio.gather(*(asyncio.to_thread(get, f"{base}/Xy?x=1&y=1") for _ in range(40)))
    assert all(s == 200 for s, _ in statuses), [s for s in statuses if s[0] != 200][:3]
