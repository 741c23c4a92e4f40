"""Framing and greetings: what every connection of the protocol shares (``docs/protocol.md``).

A frame is a 4-byte big-endian length and that many bytes of one UTF-8 JSON value. Every
message is an object with one key, its name (``{"Opened": {"session": 1}}``); the bare string
``"Heartbeat"`` is the one exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import struct
from typing import Any, Callable

MAGIC = "layer-cake"
VERSION = 2
#: The largest frame on a directory link.
MAX_DIRECTORY_FRAME = 1 << 20
#: The largest frame on a session connection.
MAX_SESSION_FRAME = 16 << 20
#: The largest greeting frame.
MAX_GREETING = 4096
#: The longest name a greeting may carry, in bytes.
MAX_NAME = 256
#: How long a peer has to greet.
HANDSHAKE_TIMEOUT = 5.0

_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The other end broke the protocol; the connection it came on is closed."""


def frame(message: Any) -> bytes:
    """One message as a frame: its length, then its compact JSON."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, limit: int) -> Any:
    """The next message on ``reader``; ``None`` at a clean end of the stream.

    A frame over ``limit`` bytes is refused from its length alone, before its body is read.
    """
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise ProtocolError("the stream ended inside a frame's length") from None
        return None
    (length,) = _LENGTH.unpack(head)
    if length > limit:
        raise ProtocolError(f"a frame of {length} bytes is over the {limit}-byte limit")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError("the stream ended inside a frame") from None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"a frame is not JSON: {e}") from None


def tagged(message: Any) -> tuple[str, dict[str, Any]]:
    """A message's name and fields (``"Heartbeat"`` has no fields)."""
    if message == "Heartbeat":
        return "Heartbeat", {}
    if isinstance(message, dict) and len(message) == 1:
        ((tag, fields),) = message.items()
        if isinstance(fields, dict):
            return tag, fields
    raise ProtocolError(f"not a message: {str(message)[:200]}")


def hello(kind: str, ident: str, name: str, scope: str = "PROCESS", role: str | None = None) -> dict[str, Any]:
    """The greeting this end sends first on every connection (``role``: the role a composite
    runs this process as, shown beside its name)."""
    fields: dict[str, Any] = {
        "magic": MAGIC,
        "version": VERSION,
        "codec": "json",
        "kind": kind,
        "id": ident,
        "scope": scope,
        "name": name.encode()[:MAX_NAME].decode(errors="ignore") or "python",
    }
    if role:
        fields["role"] = role.encode()[:MAX_NAME].decode(errors="ignore")
    return {"Hello": fields}


async def greet(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mine: dict[str, Any], first: bool
) -> dict[str, Any]:
    """Exchanges greetings (``first``: this end connected, so it speaks first); the peer's.

    Raises :class:`ProtocolError` for a wrong magic, version or codec, or no greeting within
    :data:`HANDSHAKE_TIMEOUT`.
    """
    if first:
        writer.write(frame(mine))
    try:
        theirs = await asyncio.wait_for(read_frame(reader, MAX_GREETING), HANDSHAKE_TIMEOUT)
    except asyncio.TimeoutError:
        raise ProtocolError(f"no greeting within {HANDSHAKE_TIMEOUT:g} s") from None
    if theirs is None:
        raise ProtocolError("the peer closed before greeting")
    tag, fields = tagged(theirs)
    if tag != "Hello":
        raise ProtocolError(f"the first frame is {tag}, not Hello")
    if fields.get("magic") != MAGIC:
        raise ProtocolError(f"wrong magic {fields.get('magic')!r}")
    if fields.get("version") != VERSION:
        raise ProtocolError(f"protocol version {fields.get('version')!r}, not {VERSION}")
    if fields.get("codec") != "json":
        raise ProtocolError(f"codec {fields.get('codec')!r}, not json")
    if not isinstance(fields.get("id"), str):
        raise ProtocolError("the greeting has no id")
    if not first:
        writer.write(frame(mine))
    return fields


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address) is this host's loopback: connections to it are never
    encrypted and carry no heartbeats."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


#: Between hosts: a heartbeat after this long with nothing sent...
HEARTBEAT_EVERY = 1.0
#: ...and the end of the link after this long with nothing heard, checked this often.
HEARTBEAT_SILENCE = 3.0
HEARTBEAT_CHECK = 0.5


async def heartbeats(
    heard: Callable[[], float], sent: Callable[[], float], beat: Callable[[], None], end: Callable[[str], None]
) -> None:
    """The heartbeats of a link between hosts (a session connection, or the directory link):
    ``beat()`` once nothing has been ``sent()`` for :data:`HEARTBEAT_EVERY`; ``end(reason)``
    once nothing has been ``heard()`` for :data:`HEARTBEAT_SILENCE`."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(HEARTBEAT_CHECK)
        now = loop.time()
        if now - heard() > HEARTBEAT_SILENCE:
            end(f"no heartbeat from the peer for {HEARTBEAT_SILENCE:g}s")
            return
        if now - sent() >= HEARTBEAT_EVERY:
            beat()
