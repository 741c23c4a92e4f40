#!/usr/bin/env python3
"""multihosting server, in Python: an HTTP front that spreads ``GET /Xy?x=2&y=2`` (or
``POST /Xy`` with ``{"x": 2, "y": 2}``) over every worker it finds by name, Rust or Python.

Answers as the Rust ``multihosting-server`` does: 200 ``{"type": "Table", "value": [...]}``;
400 for a query that is not an Xy; 404 for another path; 405 for another method; 502 when the
worker failed the request or went; 503 when there is no worker; 504 at the deadline. Prints
``listening ADDR`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multihosting import WORKERS, Xy  # noqa: E402

from layer_cake_client import CallError, Node, Policy, Scope  # noqa: E402

#: The largest request body taken.
MAX_BODY = 1 << 20
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def response(status: int, document: object, keep_alive: bool) -> bytes:
    body = json.dumps(document, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


def xy_from(method: str, target: str, body: bytes) -> Xy:
    if method == "GET":
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        fields = {k: v[0] for k, v in query.items()}
    else:
        fields = json.loads(body or b"{}")
    try:
        xy = Xy(int(fields["x"]), int(fields["y"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not an Xy (x and y, whole numbers): {e}") from None
    if xy.x < 0 or xy.y < 0:
        raise ValueError("x and y are not negative")
    return xy


async def answer(caller, method: str, target: str, body: bytes, timeout: float) -> tuple[int, object]:
    path = urllib.parse.urlsplit(target).path
    if path != "/Xy":
        return 404, {"error": f"no type at {path}"}
    if method not in ("GET", "POST"):
        return 405, {"error": f"{method} is not GET or POST"}
    try:
        xy = xy_from(method, target, body)
    except ValueError as e:
        return 400, {"error": str(e)}
    try:
        reply = await caller.one(
            xy, policy=Policy.LEAST_OUTSTANDING, timeout=timeout, idempotent=method == "GET", raw=True
        )
    except CallError as e:
        status = {"no-instances": 503, "busy": 503, "timeout": 504}.get(e.kind, 502)
        return status, {"error": str(e)}
    return 200, {"type": reply.type_name, "value": reply.body}


async def connection(caller, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            method, target, version = request_line.decode("latin-1").split(" ", 2)
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            keep_alive = headers.get("connection", "").lower() != "close" and version.strip() == "HTTP/1.1"
            if length > MAX_BODY:
                writer.write(response(413, {"error": f"a body over {MAX_BODY} bytes"}, False))
                return
            body = await reader.readexactly(length) if length else b""
            status, document = await answer(caller, method, target, body, timeout)
            writer.write(response(status, document, keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    except (ValueError, ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def serve(listen: str, scope: Scope, timeout: float) -> None:
    async with Node(name="server.py") as node:
        caller = await node.caller(WORKERS, scope)
        host, _, port = listen.rpartition(":")
        server = await asyncio.start_server(lambda r, w: connection(caller, r, w, timeout), host, int(port))
        addr = server.sockets[0].getsockname()
        print(f"listening {addr[0]}:{addr[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5050", help="where to listen for HTTP")
    parser.add_argument("--scope", default="HOST", help="how far to look for workers")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a request may take")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, Scope.parse(args.scope), args.timeout))


if __name__ == "__main__":
    main()
