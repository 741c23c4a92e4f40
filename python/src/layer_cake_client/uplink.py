"""The link to the parent directory: connect, greet, re-register, read, and reconnect."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any

from . import secure
from .wire import MAX_DIRECTORY_FRAME, ProtocolError, frame, greet, heartbeats, hello, is_loopback, read_frame, tagged

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("layer_cake_client")


#: The first wait before reconnecting, and the longest.
BACKOFF_FIRST = 0.02
BACKOFF_MOST = 2.0


class Uplink:
    """The process's link to its parent directory (group-cake or host-cake), kept for the
    node's life: each time it connects it registers every listing that reaches past the
    process again, and when it drops, every route that came over it is gone."""

    def __init__(self, node: "Node", host: str, port: int, secret: bytes | None = None) -> None:
        self._node = node
        self.host = host
        self.port = port
        self._secret = secret
        #: The directory is on another host (lan-cake joined directly): heartbeats, and the
        #: LAN's encryption when there is a secret.
        self.far = not is_loopback(host)
        self._writer: asyncio.StreamWriter | None = None
        #: Connected and greeted.
        self.up = asyncio.Event()
        self._heard = self._sent = 0.0
        #: A connection was tried and failed since the last one that worked.
        self.unreachable = False

    def send(self, message: Any) -> None:
        """Sends a frame if connected (what is not sent now is registered on reconnect)."""
        if self._writer is not None and self.up.is_set():
            self._writer.write(frame(message))
            self._sent = asyncio.get_running_loop().time()

    async def run(self) -> None:
        """Connects, reads, reconnects, for as long as the node runs."""
        backoff = BACKOFF_FIRST
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 5.0
                )
            except (OSError, asyncio.TimeoutError) as e:
                if not self.unreachable:
                    log.info("no directory at %s:%s (%s); retrying", self.host, self.port, e)
                self.unreachable = True
                self._node._answer_waiting()
                await asyncio.sleep(backoff * random.uniform(0.9, 1.1))
                backoff = min(backoff * 2, BACKOFF_MOST)
                continue
            beat = None
            try:
                if self.far and self._secret is not None:
                    reader = writer = await secure.connect(reader, writer, self._secret)  # type: ignore[assignment]
                await greet(
                    reader, writer, hello("process", self._node.id, self._node.name, role=self._node.role), first=True
                )
                backoff = BACKOFF_FIRST
                self.unreachable = False
                self._writer = writer
                self.up.set()
                self._node._parent_up()
                loop = asyncio.get_running_loop()
                self._heard = self._sent = loop.time()
                if self.far:
                    beat = asyncio.ensure_future(
                        heartbeats(lambda: self._heard, lambda: self._sent, lambda: self.send("Heartbeat"), self._silent)
                    )
                while True:
                    message = await read_frame(reader, MAX_DIRECTORY_FRAME)
                    if message is None:
                        break
                    self._heard = loop.time()
                    tag, fields = tagged(message)
                    self._node._from_parent(tag, fields)
            except (ProtocolError, secure.HandshakeError) as e:
                log.warning("the directory link failed: %s", e)
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
                log.info("the directory link ended: %s", e)
            finally:
                if beat is not None:
                    beat.cancel()
                was_up = self.up.is_set()
                self.up.clear()
                self._writer = None
                writer.close()
                if was_up:
                    self._node._parent_down()
            await asyncio.sleep(backoff * random.uniform(0.9, 1.1))
            backoff = min(backoff * 2, BACKOFF_MOST)

    def _silent(self, reason: str) -> None:
        log.warning("the directory link ends: %s", reason)
        if self._writer is not None:
            self._writer.close()
