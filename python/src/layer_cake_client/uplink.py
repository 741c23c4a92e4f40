"""The link to the parent directory: connect, greet, re-register, read, and reconnect."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any

from .wire import MAX_DIRECTORY_FRAME, ProtocolError, frame, greet, hello, read_frame, tagged

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

    def __init__(self, node: "Node", host: str, port: int) -> None:
        self._node = node
        self.host = host
        self.port = port
        self._writer: asyncio.StreamWriter | None = None
        #: Connected and greeted.
        self.up = asyncio.Event()
        #: A connection was tried and failed since the last one that worked.
        self.unreachable = False
        #: The parent's scope, from its greeting (while up).
        self.scope: str | None = None

    def send(self, message: Any) -> None:
        """Sends a frame if connected (what is not sent now is registered on reconnect)."""
        if self._writer is not None and self.up.is_set():
            self._writer.write(frame(message))

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
                self._node._parent_unreachable()
                await asyncio.sleep(backoff * random.uniform(0.9, 1.1))
                backoff = min(backoff * 2, BACKOFF_MOST)
                continue
            try:
                theirs = await greet(
                    reader, writer, hello("process", self._node.id, self._node.name), first=True
                )
                backoff = BACKOFF_FIRST
                self.unreachable = False
                self.scope = theirs.get("scope")
                self._writer = writer
                self.up.set()
                self._node._parent_up()
                while True:
                    message = await read_frame(reader, MAX_DIRECTORY_FRAME)
                    if message is None:
                        break
                    tag, fields = tagged(message)
                    self._node._from_parent(tag, fields)
            except ProtocolError as e:
                log.warning("the directory link broke the protocol: %s", e)
            except (OSError, ConnectionError) as e:
                log.info("the directory link ended: %s", e)
            finally:
                was_up = self.up.is_set()
                self.up.clear()
                self._writer = None
                writer.close()
                if was_up:
                    self._node._parent_down()
            await asyncio.sleep(backoff * random.uniform(0.9, 1.1))
            backoff = min(backoff * 2, BACKOFF_MOST)
