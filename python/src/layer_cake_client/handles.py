"""What an application holds: its publications and subscriptions, and the events they hear."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Union

from .scope import Scope
from .session import Incoming, Session

if TYPE_CHECKING:
    from .node import Node

#: Events a handle's queue holds at most; a full queue stops the connection that fills it
#: from reading (it pushes back on its own sessions, never on the directory).
EVENT_QUEUE = 1024


@dataclass
class Available:
    """A session with the nearest matching publisher of a name is open."""

    session: Session


@dataclass
class Delivered:
    """A subscriber opened a session with the publication."""

    session: Session


@dataclass
class Message:
    """A message (or a request) arrived on one of the sessions."""

    message: Incoming


@dataclass
class Dropped:
    """A session is over, and why."""

    session: int
    name: str
    scope: Scope
    peer: str
    reason: str


@dataclass
class Status:
    """The publication's standing in the directory at ``at`` changed (``active``, or
    ``{"standby": {"holder": ...}}``)."""

    at: Scope
    state: Any

    @property
    def active(self) -> bool:
        """The publication holds its name there."""
        return self.state == "active"


Event = Union[Available, Delivered, Message, Dropped, Status]


class EventQueue:
    """A handle's events in order. Messages wait for room (:meth:`put`); the few events the
    node itself makes (sessions opened and ended, standings) always go in (:meth:`push`)."""

    def __init__(self, bound: int = EVENT_QUEUE) -> None:
        self._items: collections.deque[Event | None] = collections.deque()
        self._bound = bound
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def push(self, event: Event | None) -> None:
        """Adds an event now, however full the queue is."""
        self._items.append(event)
        self._readable.set()
        if len(self._items) >= self._bound:
            self._room.clear()

    async def put(self, event: Event) -> None:
        """Adds an event once there is room."""
        while len(self._items) >= self._bound:
            self._room.clear()
            await self._room.wait()
        self.push(event)

    async def get(self) -> Event | None:
        """The oldest event, once there is one."""
        while not self._items:
            self._readable.clear()
            await self._readable.wait()
        event = self._items.popleft()
        if len(self._items) < self._bound:
            self._room.set()
        return event

    def __len__(self) -> int:
        return len(self._items)


class _Handle:
    def __init__(self, node: "Node", ident: str) -> None:
        self._node = node
        self.id = ident
        self.events = EventQueue()
        self._ended = False

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event (``None`` once the handle is over); at most ``timeout`` seconds."""
        if self._ended and not len(self.events):
            return None
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event is None:
            self._ended = True
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            # (Held in a box the yield empties: the iterator keeps no reference to an event,
            # so a request the application drops unanswered is failed for its caller at once.)
            box = [await self.next()]
            if box[0] is None:
                return
            yield box.pop()

    def _end(self) -> None:
        self.events.push(None)


class Publication(_Handle):
    """A published name: hears sessions opened with it and the messages on them. An async
    context manager that retracts it at the end."""

    def __init__(self, node: "Node", ident: str, name: str, scope: Scope) -> None:
        super().__init__(node, ident)
        #: The published name.
        self.name = name
        #: How far it reaches.
        self.scope = scope
        #: Its standing when ``publish`` answered: where, and ``active`` or a standby.
        self.status: Status = Status(Scope.PROCESS, "active")

    async def retract(self) -> None:
        """Withdraws the name; its sessions are closed."""
        self._node._retract(self)

    async def __aenter__(self) -> "Publication":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.retract()

    def __repr__(self) -> str:
        return f"Publication({self.name!r}, {self.scope})"


class Subscription(_Handle):
    """A search: hears a session with the nearest publisher of each name it matches. An async
    context manager that clears it at the end."""

    def __init__(self, node: "Node", ident: str, search: str, scope: Scope) -> None:
        super().__init__(node, ident)
        #: The search (an exact name, or a whole-name regular expression).
        self.search = search
        #: How far it looks.
        self.scope = scope

    async def clear(self) -> None:
        """Ends the subscription; its sessions are closed."""
        self._node._clear(self)

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.clear()

    def __repr__(self) -> str:
        return f"Subscription({self.search!r}, {self.scope})"
