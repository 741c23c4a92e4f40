"""The encrypted LAN's pieces on their own: the secret file, and the Noise handshake and
stream between two Python ends (interop with Rust is test_lan.py's, in the lab)."""

from __future__ import annotations

import asyncio
import os

import pytest

pytest.importorskip("cryptography", reason="the `lan` extra (cryptography) is not installed")

from layer_cake_client import secure  # noqa: E402
from layer_cake_client.wire import frame, read_frame  # noqa: E402


async def pair(key_a: bytes, key_b: bytes, sniffed: list[bytes]):
    """A connected (initiator, acceptor) over loopback, recording the bytes on the wire."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_accept(reader, writer):
        try:
            accepted.set_result(await secure.accept(reader, writer, key_b))
        except secure.HandshakeError as e:
            accepted.set_result(e)

    async def relay(reader, writer, upstream):
        while data := await reader.read(65536):
            sniffed.append(data)
            upstream.write(data)
        upstream.close()

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def on_tap(reader, writer):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        asyncio.ensure_future(relay(reader, writer, up_w))
        asyncio.ensure_future(relay(up_r, up_w, writer))

    tap = await asyncio.start_server(on_tap, "127.0.0.1", 0)
    r, w = await asyncio.open_connection("127.0.0.1", tap.sockets[0].getsockname()[1])
    initiator = await secure.connect(r, w, key_a)
    return initiator, await asyncio.wait_for(accepted, 5), (server, tap)


async def test_the_same_secret_carries_frames_both_ways_and_the_wire_shows_no_plaintext():
    key = os.urandom(32)
    sniffed: list[bytes] = []
    a, b, servers = await pair(key, key, sniffed)
    big = {"Data": {"session": 1, "type": "string", "body": "secret words " * 10000}}
    a.write(frame(big))
    assert await read_frame(b, 1 << 24) == big
    b.write(frame({"Opened": {"session": 1}}))
    assert await read_frame(a, 1 << 24) == {"Opened": {"session": 1}}
    assert b"secret words" not in b"".join(sniffed)
    for s in servers:
        s.close()


async def test_another_secret_is_refused_at_the_handshake():
    with pytest.raises(secure.HandshakeError, match="does not hold this LAN's secret"):
        await pair(os.urandom(32), os.urandom(32), [])


def test_a_secret_file_must_be_private_and_hold_64_hex_digits(tmp_path):
    good = tmp_path / "good.key"
    good.write_text("ab" * 32 + "\n")
    good.chmod(0o600)
    assert secure.read_secret(good) == bytes.fromhex("ab" * 32)
    good.chmod(0o644)
    with pytest.raises(secure.SecretError, match="open to others"):
        secure.read_secret(good)
    short = tmp_path / "short.key"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(secure.SecretError, match="64 hex digits"):
        secure.read_secret(short)
