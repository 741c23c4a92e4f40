#!/usr/bin/env python3
"""Session round trips, 64-byte strings one at a time: Python<->Rust and Python<->Python
against Rust<->Rust, in the same run, through a host-cake of its own on loopback.

    target/python-venv/bin/python python/bench/rtt.py [--runs 5000]

It uses the release binaries (``LC_BIN_DIR``, default ``target/release``; build them with
``cargo build --release --workspace --bins``) and prints the median and p99 of each pairing.
``--serve NAME`` is the Python echo publisher it starts (in a process of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
try:
    import layer_cake_client  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "python" / "src"))

from layer_cake_client import Available, Message, Node, Scope  # noqa: E402

BIN = Path(os.environ.get("LC_BIN_DIR", REPO / "target" / "release"))


async def serve(name: str) -> None:
    async with Node() as node:
        publication = await node.publish(name, Scope.HOST)
        print(f"published {name}", flush=True)
        async for event in publication:
            if isinstance(event, Message):
                await event.message.reply(event.message.body, type_name=event.message.type_name)


async def python_client(directory: str, search: str, runs: int) -> tuple[float, float]:
    async with Node(directory) as node:
        sub = await node.subscribe(search, Scope.HOST)
        while not isinstance(event := await sub.next(timeout=15), Available):
            pass
        session = event.session
        small = "x" * 64
        for _ in range(100):
            await session.request_raw(small)
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            await session.request_raw(small)
            samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int((len(samples) - 1) * 0.99)] * 1e6


def start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "LC_DEBUG_LEVEL": "warn", **env})
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


def rust_client(directory: str, search: str, runs: int) -> tuple[float, float]:
    out = subprocess.run(
        [str(BIN / "bench-echo"), "--client", search, "--runs", str(runs), "--big-runs", "0"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "LC_DIRECTORY": directory, "LC_DEBUG_LEVEL": "warn"},
    )
    fields = dict(kv.split("=") for kv in out.stdout.split())
    return float(fields["rtt_p50_us"]), float(fields["rtt_p99_us"])


def main() -> None:
    parser = argparse.ArgumentParser(description="session round trips across languages")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--serve", metavar="NAME")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    started = []
    try:
        host, line = start([str(BIN / "host-cake"), "--listen", "127.0.0.1:0", "--connect-to-directory", "127.0.0.1:1"], {})
        started.append(host)
        directory = line.split()[-1]
        env = {"LC_DIRECTORY": directory}
        for cmd in (
            [str(BIN / "bench-echo"), "--name", "echo-rust"],
            [sys.executable, __file__, "--serve", "echo-py"],
        ):
            p, _ = start(cmd, env)
            started.append(p)
        rows = [
            ("Rust -> Rust", rust_client(directory, "echo-rust", args.runs)),
            ("Python -> Rust", asyncio.run(python_client(directory, "echo-rust", args.runs))),
            ("Rust -> Python", rust_client(directory, "echo-py", args.runs)),
            ("Python -> Python", asyncio.run(python_client(directory, "echo-py", args.runs))),
        ]
    finally:
        for p in reversed(started):
            p.kill()
            p.wait()
    base = rows[0][1][0]
    print(f"session round trip, 64 B, {args.runs} one at a time, loopback, CPUs allowed: {len(os.sched_getaffinity(0))}")
    print("| client -> echo | p50 us | p99 us | p50 / Rust->Rust |")
    print("|---|---:|---:|---:|")
    for who, (p50, p99) in rows:
        print(f"| {who} | {p50:.1f} | {p99:.1f} | {p50 / base:.2f}x |")


if __name__ == "__main__":
    main()
