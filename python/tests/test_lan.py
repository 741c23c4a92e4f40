"""LAN scope across hosts, mixed languages, in the namespace lab (``tests/lab/lab.sh``): the
encrypted LAN talks to holders of the secret only. Skipped (with the reason) where the lab
cannot be built: it needs root and ``ip netns``."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, Proc, bin_path

LAB_SH = REPO / "tests" / "lab" / "lab.sh"


def lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the namespace lab)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip netns`"
    probe = f"lcpyprobe{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return "`ip netns add` does not work here"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


REASON = lab_possible()


@pytest.fixture
def lab():
    name = f"py{os.getpid() % 100000}"
    subprocess.run(["bash", str(LAB_SH), "up", name, "4"], check=True)
    started: list[Proc] = []

    def spawn(k: int, args: list[str], env: dict[str, str] | None = None) -> Proc:
        p = Proc(["ip", "netns", "exec", f"{name}-h{k}", *args], env)
        started.append(p)
        return p

    yield spawn
    for p in started:
        p.kill()
    subprocess.run(["bash", str(LAB_SH), "down", name], check=True)


@pytest.mark.skipif(REASON is not None, reason=REASON or "")
async def test_an_encrypted_lan_between_python_and_rust_talks_to_holders_of_the_secret_only(lab, tmp_path):
    key = tmp_path / "lan.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    with_key = {"LC_SECRET_FILE": str(key), "PYTHONPATH": str(REPO / "python" / "src")}
    without_key = {"PYTHONPATH": str(REPO / "python" / "src")}
    lan = lab(0, [bin_path("lan-cake"), "--secret-file", str(key)])
    await lan.expect("listening 0.0.0.0:54195")
    for k in (1, 2, 3):
        host = lab(k, [bin_path("host-cake"), "--secret-file", str(key)])
        await host.expect("listening 127.0.0.1:54195")
    peer = [sys.executable, str(REPO / "python" / "tests" / "lab_peer.py")]

    # A Python publisher on h1; a Rust subscriber with the key on h2 reaches it, encrypted.
    py_pub = lab(1, [*peer, "publish", "lab:py", "LAN"], with_key)
    await py_pub.expect("published lab:py LAN")
    rust_sub = lab(2, [bin_path("subscriber"), "--search", "lab:py", "--scope", "LAN"], with_key)
    line = await rust_sub.expect("available lab:py LAN")
    assert "addr=10.0.0.1:" in line, line
    await rust_sub.expect("reply lab:py seq=1")

    # A Rust publisher on h3; a Python subscriber with the key on h2 reaches it.
    rust_pub = lab(3, [bin_path("publisher"), "--name", "lab:rust", "--scope", "LAN"], with_key)
    await rust_pub.expect("published lab:rust LAN")
    py_keyless = lab(2, [*peer, "subscribe", "lab:.*", "LAN"], without_key)
    await py_keyless.expect("subscribed")
    py_sub = lab(2, [*peer, "subscribe", "lab:.*", "LAN"], with_key)
    replies = {(await py_sub.expect("reply lab:")).split()[1] for _ in range(2)}
    assert replies == {"lab:py", "lab:rust"}, py_sub.seen
    available = [line for line in py_sub.seen if line.startswith("available")]
    assert any("lab:rust LAN" in a and "addr=10.0.0.3:" in a for a in available), available
    assert any("lab:py LAN" in a and "addr=10.0.0.1:" in a for a in available), available

    # The keyless Python subscriber got the routes from its host-cake, but both publishers
    # (Rust and Python) refused it at the handshake.
    seen = list(py_keyless.seen)
    while not py_keyless.lines.empty():
        line = py_keyless.lines.get_nowait()
        if line is not None:
            seen.append(line)
    assert not any(l.startswith(("available", "reply")) for l in seen), seen
