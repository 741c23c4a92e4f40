"""A session connection between two processes: its frames, its sessions and its requests.

A subscriber's process connects to a publisher's process once and carries every session it
opens with that process on the one connection; the publisher's side of that connection holds
the sessions subscribers opened with its publications.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .handles import Message, _Handle
from .session import Incoming, Reply, RequestFailed, RequestTimeout, SendError, Session, SessionLost
from .wire import MAX_SESSION_FRAME, ProtocolError, frame, heartbeats, read_frame, tagged

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("layer_cake_client")

#: Bytes written but not yet taken by the peer, at most, before a sender waits for room.
OUTBOX = 4 << 20
#: How long a sender waits for room.
SEND_TIMEOUT = 10.0


class Connection:
    """One session connection. See the module documentation."""

    def __init__(
        self,
        node: "Node",
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        remote_id: str,
        remote_name: str,
        outbound: bool,
        far: bool = False,
        peer_addr: str = "",
    ) -> None:
        self._node = node
        self._reader = reader
        self._writer = writer
        #: The other process's id and name, from its greeting.
        self.remote_id = remote_id
        self.remote_name = remote_name
        #: This process made the connection (its sessions are its subscriptions').
        self.outbound = outbound
        #: Open sessions: each with the handle that hears its events.
        self.sessions: dict[int, tuple[Session, _Handle]] = {}
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._next_corr = 0
        self.closed = False
        #: The peer is on another host (heartbeats; only LAN publications may be opened).
        self.far = far
        #: The other end's address (``ip:port``).
        self.peer_addr = peer_addr
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._last_heard = self._loop.time()
        self._heartbeat = (
            asyncio.ensure_future(
                heartbeats(lambda: self._last_heard, lambda: self._last_sent, lambda: self.write("Heartbeat"), self._silent)
            )
            if far
            else None
        )

    # Writing.

    def write(self, message: Any) -> None:
        """Queues a frame (control frames: they never wait for room)."""
        if not self.closed:
            self._writer.write(frame(message))
            if self.far:
                self._last_sent = self._loop.time()

    async def _write_with_room(self, message: Any, timeout: float) -> None:
        if self.closed:
            raise SendError("the connection is closed")
        self.write(message)
        if self._writer.transport.get_write_buffer_size() > OUTBOX:
            try:
                await asyncio.wait_for(self._writer.drain(), timeout)
            except asyncio.TimeoutError:
                raise SendError(f"no room in the connection's outbox within {timeout:g} s") from None
            except ConnectionError as e:
                raise SendError(f"the connection ended: {e}") from None

    async def send_data(
        self, session: Session, type_name: str, body: Any, reply: int = 0
    ) -> None:
        """Sends one message on ``session`` (a reply when ``reply`` names a request)."""
        if session.closed:
            raise SendError(f"session {session.id} is over")
        data: dict[str, Any] = {"session": session.id}
        if reply:
            data["reply"] = reply
        data["type"] = type_name
        data["body"] = body
        await self._write_with_room({"Data": data}, SEND_TIMEOUT)

    async def request(
        self, session: Session, type_name: str, body: Any, timeout: float, call: int | None
    ) -> Reply:
        """Sends a request on ``session`` and waits for its reply."""
        if session.closed:
            raise SessionLost(f"session {session.id} is over")
        self._next_corr += 1
        corr = self._next_corr
        data: dict[str, Any] = {"session": session.id, "corr": corr}
        if call:
            data["call"] = call
        data["type"] = type_name
        data["body"] = body
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._pending[corr] = future
        until = loop.time() + timeout
        try:
            try:
                await self._write_with_room({"Data": data}, timeout)
            except SendError as e:
                raise SessionLost(str(e)) from None
            return await asyncio.wait_for(future, max(0.0, until - loop.time()))
        except asyncio.TimeoutError:
            raise RequestTimeout(f"no reply within {timeout:g} s") from None
        finally:
            self._pending.pop(corr, None)

    def send_failed(self, session: int, corr: int, kind: str, reason: str) -> None:
        """Tells the peer its request (``corr``; 0 for a plain message) will not be answered."""
        self.write({"Failed": {"session": session, "reply": corr, "kind": kind, "reason": reason}})

    def close_session(self, session: Session, reason: str) -> None:
        """Ends ``session`` from this side (a publisher's, when it retracts)."""
        if self.sessions.pop(session.id, None) is not None:
            session.closed = True
            self.write({"Close": {"session": session.id, "reason": reason}})

    # Reading.

    async def run(self) -> None:
        """Reads frames until the connection ends; then every session on it is over."""
        reason = "the other end closed the connection"
        try:
            while True:
                message = await read_frame(self._reader, MAX_SESSION_FRAME)
                if message is None:
                    break
                if self.far:
                    self._last_heard = self._loop.time()
                await self._dispatch(message)
        except ProtocolError as e:
            reason = f"bad frame: {e}"
            log.warning("closing the connection with %s: %s", self.remote_name, reason)
        except (ConnectionError, OSError) as e:
            reason = f"connection error: {e}"
        finally:
            self.end(reason)

    def end(self, reason: str) -> None:
        """Closes the connection: its requests fail, its sessions are over."""
        if self.closed:
            return
        self.closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self._writer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SessionLost(f"connection lost: {reason}"))
        self._pending.clear()
        sessions = self.sessions
        self.sessions = {}
        for session, _ in sessions.values():
            session.closed = True
        self._node._connection_lost(self, list(sessions.values()), reason)

    def _silent(self, reason: str) -> None:
        log.warning("closing the connection with %s: %s", self.remote_name, reason)
        self.end(reason)

    async def _dispatch(self, message: Any) -> None:
        tag, f = tagged(message)
        if tag == "Data":
            await self._on_data(f)
        elif tag == "Failed":
            future = self._pending.pop(f.get("reply", 0), None)
            if future is not None and not future.done():
                future.set_exception(RequestFailed(str(f.get("kind")), str(f.get("reason"))))
        elif tag == "Heartbeat":
            pass
        elif tag == "Open" and not self.outbound:
            self._node._inbound_open(self, _session_of(f), f)
        elif tag == "Opened" and self.outbound:
            self._node._opened(self, _session_of(f))
        elif tag == "Refused" and self.outbound:
            self._node._ended_by_peer(self, _session_of(f), f"refused: {f.get('reason')}")
        elif tag == "Close":
            session = _session_of(f)
            entry = self.sessions.pop(session, None)
            if entry is not None:
                entry[0].closed = True
                reason = f"closed by the other end: {f.get('reason')}"
                self._node._ended_by_peer(self, session, reason, entry)
        else:
            raise ProtocolError(f"{tag} has no place on a session connection")

    async def _on_data(self, f: dict[str, Any]) -> None:
        session = _session_of(f)
        corr, reply, call = f.get("corr", 0), f.get("reply", 0), f.get("call")
        type_name = f.get("type")
        if not isinstance(corr, int) or not isinstance(reply, int) or not isinstance(type_name, str) or "body" not in f:
            self.send_failed(session, corr if isinstance(corr, int) else 0, "malformed", "the frame did not decode")
            return
        if reply:
            future = self._pending.pop(reply, None)
            if future is not None and not future.done():
                future.set_result(Reply(type_name, f["body"]))
            return
        entry = self.sessions.get(session)
        if entry is None:
            self.send_failed(session, corr, "undeliverable", f"no open session {session} on this connection")
            return
        incoming = Incoming(entry[0], type_name, f["body"], corr, call if isinstance(call, int) else None)
        await entry[1].events.put(Message(incoming))


def _session_of(f: dict[str, Any]) -> int:
    session = f.get("session")
    if not isinstance(session, int) or isinstance(session, bool) or session < 0:
        raise ProtocolError("a frame names no session")
    return session
