"""Sessions, the messages that arrive on them, and the errors of sending and requesting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .message import DecodeError, declared, from_wire, to_wire, wire_name
from .scope import Scope

if TYPE_CHECKING:
    from .peer import Connection

T = TypeVar("T")


class SendError(Exception):
    """A message could not be sent: the session or its connection is over, or no room came."""


class RequestError(Exception):
    """A request got no reply."""


class RequestTimeout(RequestError):
    """No reply within the request's deadline."""


class RequestFailed(RequestError):
    """The other end says the request will never be answered (a ``Failed`` frame)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        #: ``malformed``, ``undecodable``, ``unanswered``, ``undeliverable`` or
        #: ``reply-unsendable``.
        self.kind = kind
        #: Why, in words.
        self.reason = reason


class SessionLost(RequestError):
    """The session (or its connection) ended before the reply came."""


def _encode(message: Any, type_name: str | None) -> tuple[str, Any]:
    return (type_name or wire_name(message)), to_wire(message)


def _decoded(type_name: str, body: Any, cls: type | None) -> Any:
    if cls is not None:
        return from_wire(cls, body)
    declared_cls = declared(type_name)
    return from_wire(declared_cls, body) if declared_cls is not None else body


class Reply:
    """A reply as it came: its type's name and its JSON value."""

    __slots__ = ("type_name", "body")

    def __init__(self, type_name: str, body: Any) -> None:
        self.type_name = type_name
        self.body = body

    def decode(self, cls: type[T] | None = None) -> Any:
        """The reply as ``cls``, or as the type declared for its name, or as plain JSON."""
        return _decoded(self.type_name, self.body, cls)

    def __repr__(self) -> str:
        return f"Reply({self.type_name!r}, {str(self.body)[:80]})"


class Session:
    """One session between a subscriber and a publisher: either end can send and request."""

    def __init__(self, conn: "Connection", ident: int, name: str, matched_at: Scope) -> None:
        self._conn = conn
        #: The session's id (chosen by the subscriber's process).
        self.id = ident
        #: The published name the session is with.
        self.name = name
        #: The scope of the directory that matched it.
        self.matched_at = matched_at
        self.closed = False

    @property
    def peer(self) -> str:
        """The process id at the other end."""
        return self._conn.remote_id

    @property
    def peer_addr(self) -> str:
        """The other end's address, ``ip:port``."""
        return self._conn.peer_addr

    @property
    def peer_name(self) -> str:
        """The other process's name, from its greeting."""
        return self._conn.remote_name

    async def send(self, message: Any, type_name: str | None = None) -> None:
        """Sends a message that gets no reply."""
        name, body = _encode(message, type_name)
        await self._conn.send_data(self, name, body)

    async def request(
        self,
        message: Any,
        timeout: float = 5.0,
        reply_type: type | None = None,
        type_name: str | None = None,
        call: int | None = None,
    ) -> Any:
        """Sends a request and waits up to ``timeout`` seconds for its reply, decoded as
        ``reply_type`` (or the type declared for the reply's name, or plain JSON)."""
        reply = await self.request_raw(message, timeout, type_name=type_name, call=call)
        return reply.decode(reply_type)

    async def request_raw(
        self, message: Any, timeout: float = 5.0, type_name: str | None = None, call: int | None = None
    ) -> Reply:
        """Sends a request and waits for its reply as it came."""
        name, body = _encode(message, type_name)
        return await self._conn.request(self, name, body, timeout, call)

    def __repr__(self) -> str:
        return f"Session({self.id}, {self.name!r}, {self.matched_at}, peer={self.peer[:8]})"


class Incoming:
    """A message that arrived on a session; a request is answered with :meth:`reply`.

    A request dropped without an answer is failed (``unanswered``) for its caller, so no
    caller waits for a reply that will not come.
    """

    __slots__ = ("session", "type_name", "body", "_corr", "call_id", "_answered")

    def __init__(
        self, session: Session, type_name: str, body: Any, corr: int, call: int | None
    ) -> None:
        self.session = session
        self.type_name = type_name
        self.body = body
        self._corr = corr
        #: The call id an idempotent caller gives every try of one call (to deduplicate).
        self.call_id = call
        self._answered = corr == 0

    @property
    def is_request(self) -> bool:
        """The sender waits for a reply."""
        return self._corr != 0

    def is_(self, cls: type) -> bool:
        """The message travels under ``cls``'s declared name."""
        return getattr(cls, "__lc_name__", None) == self.type_name

    def decode(self, cls: type[T] | None = None) -> Any:
        """The message as ``cls``, or as the type declared for its name, or as plain JSON."""
        return _decoded(self.type_name, self.body, cls)

    async def reply(self, message: Any, type_name: str | None = None) -> None:
        """Answers the request."""
        if self._answered:
            raise SendError("this message was already answered, or is not a request")
        self._answered = True
        name, body = _encode(message, type_name)
        await self.session._conn.send_data(self.session, name, body, reply=self._corr)

    def fail(self, reason: str, kind: str = "undecodable") -> None:
        """Answers the request with a failure: the caller's request ends with ``reason``."""
        if not self._answered:
            self._answered = True
            self.session._conn.send_failed(self.session.id, self._corr, kind, reason)

    def __del__(self) -> None:
        if not self._answered:
            try:
                self.fail("the other end dropped the request without answering", "unanswered")
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"Incoming({self.type_name!r} on {self.session!r})"


__all__ = [
    "DecodeError",
    "Incoming",
    "Reply",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
    "SendError",
    "Session",
    "SessionLost",
]
