"""Attachments: which publisher each (subscription, name) holds a session with.

The same rules as the Rust runtime (``runtime/src/directory/attach.rs``), as a pure state
machine: every route a directory gives is kept, and at most one session is held, with the
publisher of the **nearest** route. A nearer route closes the session and opens the nearer
one (upgrade); a session that ends opens the nearest remaining route (fallback), skipping the
publisher that just failed until a directory gives its route again or a retry comes; a route
a directory clears does not end a live session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .scope import Scope

#: A publication as the directories describe it: id, name, scope, process, addr.
PubInfo = dict[str, Any]
Key = tuple[str, str]


@dataclass
class Open:
    """Connect to the publisher's process and open ``session`` with it."""

    session: int
    sub: str
    at: Scope
    publisher: PubInfo


@dataclass
class Close:
    """Tell the publisher ``session`` is over."""

    session: int
    process: str
    reason: str


@dataclass
class Available:
    """Tell the application: ``session`` is open."""

    session: int
    sub: str
    at: Scope
    publisher: PubInfo


@dataclass
class Dropped:
    """Tell the application: ``session``, which it was told of, is over."""

    session: int
    sub: str
    at: Scope
    publisher: PubInfo
    reason: str


Action = Union[Open, Close, Available, Dropped]


@dataclass
class _Candidate:
    at: Scope
    publisher: PubInfo
    broken: bool = False


@dataclass
class _Current:
    session: int
    at: Scope
    publisher: PubInfo
    open: bool = False


@dataclass
class _NameState:
    routes: list[_Candidate] = field(default_factory=list)
    current: _Current | None = None


class Attachments:
    """Every (subscription, name) of one process and the session each holds."""

    def __init__(self) -> None:
        self._names: dict[Key, _NameState] = {}
        self._sessions: dict[int, Key] = {}
        self._next_session = 0

    def route(self, sub: str, at: Scope, publisher: PubInfo, out: list[Action]) -> None:
        """A directory at ``at`` matched ``sub`` with ``publisher``."""
        key = (sub, publisher["name"])
        state = self._names.setdefault(key, _NameState())
        for c in state.routes:
            if c.at == at and c.publisher["id"] == publisher["id"]:
                c.broken = False
                c.publisher = publisher
                break
        else:
            state.routes.append(_Candidate(at, publisher))
        current = state.current
        if current is not None:
            if current.publisher["id"] == publisher["id"]:
                current.at = min(current.at, at)
                return
            if at >= current.at:
                return
            state.current = None
            self._sessions.pop(current.session, None)
            self._end(sub, current, "upgrade to a nearer publisher", out)
        self._open_best(key, out)

    def route_cleared(self, sub: str, at: Scope, publication: str, name: str) -> None:
        """A directory's match no longer holds; a live session over it carries on."""
        key = (sub, name)
        state = self._names.get(key)
        if state is None:
            return
        state.routes = [
            c for c in state.routes if not (c.at == at and c.publisher["id"] == publication)
        ]
        if not state.routes and state.current is None:
            del self._names[key]

    def routes_lost(self, wider_than: Scope) -> None:
        """Every route from beyond ``wider_than`` is gone (the parent directory's link ended)."""
        for key in list(self._names):
            state = self._names[key]
            state.routes = [c for c in state.routes if c.at <= wider_than]
            if not state.routes and state.current is None:
                del self._names[key]

    def opened(self, session: int, out: list[Action]) -> None:
        """The publisher accepted ``session``."""
        key = self._sessions.get(session)
        if key is None:
            return
        c = self._names[key].current
        if c is not None and c.session == session and not c.open:
            c.open = True
            out.append(Available(session, key[0], c.at, c.publisher))

    def ended(self, session: int, reason: str, out: list[Action]) -> None:
        """``session`` is over (refused, closed, its connection lost): fall back."""
        key = self._sessions.pop(session, None)
        if key is None:
            return
        state = self._names[key]
        current = state.current
        if current is None or current.session != session:
            return
        state.current = None
        for c in state.routes:
            if c.publisher["id"] == current.publisher["id"]:
                c.broken = True
        if current.open:
            out.append(Dropped(session, key[0], current.at, current.publisher, reason))
        self._open_best(key, out)
        if state.current is None and not state.routes:
            self._names.pop(key, None)

    def process_lost(self, process: str, reason: str, out: list[Action]) -> None:
        """The connection with ``process`` ended: its routes are broken, its sessions over."""
        for state in self._names.values():
            for c in state.routes:
                if c.publisher["process"] == process:
                    c.broken = True
        ended = sorted(
            s.current.session
            for s in self._names.values()
            if s.current is not None and s.current.publisher["process"] == process
        )
        for session in ended:
            self.ended(session, reason, out)

    def retry(self, out: list[Action]) -> None:
        """Routes without a session are tried again, broken ones too."""
        for key, state in list(self._names.items()):
            if state.current is None and state.routes:
                for c in state.routes:
                    c.broken = False
                self._open_best(key, out)

    def has_idle(self) -> bool:
        """Some name has routes but no session."""
        return any(s.current is None and s.routes for s in self._names.values())

    def unsubscribe(self, sub: str, out: list[Action]) -> None:
        """``sub`` is cleared: its sessions are closed (not reported dropped)."""
        for key in [k for k in self._names if k[0] == sub]:
            state = self._names.pop(key)
            if state.current is not None:
                self._sessions.pop(state.current.session, None)
                out.append(
                    Close(state.current.session, state.current.publisher["process"], "subscription cleared")
                )

    def describe(self) -> list[dict[str, Any]]:
        """Every session held, as a process answers ``AskSessions``."""
        held = []
        for (sub, name), state in sorted(self._names.items()):
            c = state.current
            if c is not None:
                held.append(
                    {
                        "session": c.session,
                        "sub": sub,
                        "at": str(c.at),
                        "publisher": c.publisher,
                        "open": c.open,
                    }
                )
        return held

    def _end(self, sub: str, current: _Current, reason: str, out: list[Action]) -> None:
        out.append(Close(current.session, current.publisher["process"], reason))
        if current.open:
            out.append(Dropped(current.session, sub, current.at, current.publisher, reason))

    def _open_best(self, key: Key, out: list[Action]) -> None:
        state = self._names.get(key)
        if state is None or state.current is not None:
            return
        usable = [c for c in state.routes if not c.broken]
        if not usable:
            return
        best = min(usable, key=lambda c: c.at)
        self._next_session += 1
        session = self._next_session
        state.current = _Current(session, best.at, best.publisher)
        self._sessions[session] = key
        out.append(Open(session, key[0], best.at, best.publisher))
