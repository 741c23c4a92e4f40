"""The node: a process's place in the directory tree, its publications and subscriptions, and
the sessions between them (``docs/protocol.md`` is the contract this follows)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

from . import attach, secure
from .attach import Attachments, PubInfo
from .handles import Available, Delivered, Dropped, Publication, Status, Subscription
from .peer import Connection
from .scope import Scope, Search, valid_name
from .session import Session
from .uplink import Uplink
from .wire import ProtocolError, greet, hello, is_loopback

if TYPE_CHECKING:
    from .caller import Caller

log = logging.getLogger("layer_cake_client")

#: Where host-cake listens.
DEFAULT_DIRECTORY = ("127.0.0.1", 54195)
#: How long ``publish`` waits for the parent directory's answer before answering itself.
PUBLISH_ANSWER = 2.0
#: How long a publisher has to accept a session.
OPEN_TIMEOUT = 3.0
#: How often routes whose sessions failed are tried again.
RETRY = 1.0
#: Sessions on one connection, at most.
SESSIONS_PER_CONNECTION = 65536


class PublishError(Exception):
    """A name could not be published: not a valid name, already published here, or refused by
    a directory."""


def directory_from_env(value: str | None) -> tuple[str, int] | None:
    """The directory ``LC_DIRECTORY`` names (``host:port``, or ``none``), else host-cake."""
    if value is None or value == "":
        return DEFAULT_DIRECTORY
    if value.lower() == "none":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"LC_DIRECTORY={value!r} is not host:port or none")
    return host.strip("[]"), int(port)



class _SubSession:
    """A session this process opens as a subscriber, from its Open to its end."""

    def __init__(self, sub: str, at: Scope, publisher: PubInfo) -> None:
        self.sub, self.at, self.publisher = sub, at, publisher
        self.conn: Connection | None = None
        self.session: Session | None = None
        self.timer: asyncio.TimerHandle | None = None


class Node:
    """A process's node. Use as ``async with Node() as node:`` (or ``await node.start()`` and
    ``await node.close()``).

    ``directory`` is ``(host, port)``, ``"host:port"``, ``None`` for none (PROCESS scope
    only), or left out for ``LC_DIRECTORY`` (so a role in a composite needs no setting) and
    else host-cake at 127.0.0.1:54195.
    """

    def __init__(self, directory: Any = "env", name: str | None = None, secret: Any = "env") -> None:
        if directory == "env":
            self._directory = directory_from_env(os.environ.get("LC_DIRECTORY"))
        elif isinstance(directory, str):
            self._directory = directory_from_env(directory)
        else:
            self._directory = directory
        #: The LAN's secret (``secret``: 32 bytes, a secret file's path, ``None``, or left out
        #: for ``LC_SECRET_FILE``): sessions with other hosts are encrypted with it.
        if secret == "env":
            self._secret = secure.secret_from_env()
        elif isinstance(secret, (str, os.PathLike)):
            self._secret = secure.read_secret(secret)
        else:
            self._secret = secret
        #: This process's id, fixed for its life.
        self.id = str(uuid.uuid4())
        #: Its readable name (the script's base name by default).
        self.name = name or os.path.basename(sys.argv[0] or "python") or "python"
        #: The role a composite runs it as (``LC_ROLE``), shown beside the name.
        self.role = os.environ.get("LC_ROLE") or None
        self._uplink = Uplink(self, *self._directory, self._secret) if self._directory else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._wide: asyncio.base_events.Server | None = None
        self.session_addr = ""
        self._pubs: dict[str, Publication] = {}
        self._pub_info: dict[str, PubInfo] = {}
        self._answers: dict[str, asyncio.Future[Status]] = {}
        self._subs: dict[str, Subscription] = {}
        self._searches: dict[str, Search] = {}
        self._attach = Attachments()
        #: The sessions this process holds as a subscriber, from their Open to their end.
        self._held: dict[int, _SubSession] = {}
        self._outbound: dict[str, Connection | list[int]] = {}
        self._inbound: set[Connection] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False

    # Life.

    async def start(self) -> "Node":
        """Listens for sessions and starts joining the directory."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.session_addr = f"127.0.0.1:{port}"
        if self._uplink is not None:
            self._spawn(self._uplink.run())
        return self

    async def joined(self, timeout: float = 5.0) -> bool:
        """Waits (at most ``timeout`` s) until the node is linked to its directory."""
        if self._uplink is None:
            return False
        try:
            await asyncio.wait_for(self._uplink.up.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        """Retracts and clears everything, closes every connection and stops."""
        if self._closed:
            return
        self._closed = True
        for p in list(self._pubs.values()):
            self._retract(p)
        for s in list(self._subs.values()):
            self._clear(s)
        for conn in list(self._inbound) + [c for c in self._outbound.values() if isinstance(c, Connection)]:
            conn.end("the node stopped")
        for server in (self._server, self._wide):
            if server is not None:
                server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> "Node":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Publishing.

    async def publish(self, name: str, scope: Scope | str = Scope.HOST) -> Publication:
        """Publishes ``name`` at ``scope``; answered by the nearest directory it reaches (its
        standing is in ``status``: ``active``, or a standby behind another process)."""
        scope = Scope.parse(scope)
        if not valid_name(name):
            raise PublishError(f"{name!r} is not a name: 1 to 1024 characters, no whitespace or control characters")
        if any(p.name == name for p in self._pubs.values()):
            raise PublishError(f"{name!r} is already published by this process")
        ident = str(uuid.uuid4())
        publication = Publication(self, ident, name, scope)
        addr = self.session_addr if scope < Scope.LAN else await self._listen_wide()
        info = {"id": ident, "name": name, "scope": str(scope), "process": self.id, "addr": addr}
        self._pubs[ident] = publication
        self._pub_info[ident] = info
        for sub, search in self._searches.items():
            if search.matches(name):
                self._act_on(lambda out, sub=sub: self._attach.route(sub, Scope.PROCESS, info, out))
        if scope > Scope.PROCESS and self._parent_answers():
            answer = asyncio.get_running_loop().create_future()
            self._answers[ident] = answer
            self._uplink.send({"Publish": info})  # type: ignore[union-attr]
            try:
                status = await asyncio.wait_for(asyncio.shield(answer), PUBLISH_ANSWER)
            except asyncio.TimeoutError:
                status = Status(Scope.PROCESS, "active")
            finally:
                self._answers.pop(ident, None)
            if isinstance(status.state, dict) and "refused" in status.state:
                self._retract(publication)
                reason = status.state["refused"].get("reason")
                raise PublishError(f"refused by the {status.at} directory: {reason}")
            publication.status = status
        elif scope > Scope.PROCESS and self._uplink is not None:
            self._uplink.send({"Publish": info})
        return publication

    async def _listen_wide(self) -> str:
        """Where LAN publications take sessions: every interface (``0.0.0.0:port``)."""
        if self._wide is None:
            self._wide = await asyncio.start_server(self._accept, "0.0.0.0", 0)
        return f"0.0.0.0:{self._wide.sockets[0].getsockname()[1]}"

    def _parent_answers(self) -> bool:
        return self._uplink is not None and (self._uplink.up.is_set() or not self._uplink.unreachable)

    def _retract(self, publication: Publication) -> None:
        if self._pubs.pop(publication.id, None) is None:
            return
        info = self._pub_info.pop(publication.id)
        if publication.scope > Scope.PROCESS and self._uplink is not None:
            self._uplink.send({"Retract": {"id": publication.id}})
        for sub, search in self._searches.items():
            if search.matches(publication.name):
                self._attach.route_cleared(sub, Scope.PROCESS, publication.id, info["name"])
        for conn in list(self._inbound):
            for session, handle in list(conn.sessions.values()):
                if handle is publication:
                    conn.close_session(session, "publication retracted")
        publication._end()

    # Subscribing.

    async def subscribe(self, search: str, scope: Scope | str = Scope.HOST) -> Subscription:
        """Subscribes with ``search`` (an exact name, or a regular expression that must match
        the whole name) at ``scope``: a session with the nearest publisher of each name."""
        scope = Scope.parse(scope)
        compiled = Search(search)
        ident = str(uuid.uuid4())
        subscription = Subscription(self, ident, search, scope)
        self._subs[ident] = subscription
        self._searches[ident] = compiled
        for info in self._pub_info.values():
            if compiled.matches(info["name"]):
                self._act_on(lambda out, info=info: self._attach.route(ident, Scope.PROCESS, info, out))
        if scope > Scope.PROCESS and self._uplink is not None:
            self._uplink.send({"Subscribe": self._sub_frame(subscription)})
        return subscription

    async def caller(self, search: str, scope: Scope | str = Scope.HOST, **options: Any) -> "Caller":
        """A :class:`~layer_cake_client.caller.Caller` over every instance ``search`` matches
        (``per_instance``, ``deadline`` as its options)."""
        from .caller import Caller

        return Caller(await self.subscribe(search, scope), **options)

    def _sub_frame(self, s: Subscription) -> dict[str, Any]:
        return {"id": s.id, "search": s.search, "scope": str(s.scope), "process": self.id}

    def _clear(self, subscription: Subscription) -> None:
        if self._subs.pop(subscription.id, None) is None:
            return
        del self._searches[subscription.id]
        if subscription.scope > Scope.PROCESS and self._uplink is not None:
            self._uplink.send({"Unsubscribe": {"id": subscription.id}})
        self._act_on(lambda out: self._attach.unsubscribe(subscription.id, out))
        subscription._end()

    # The parent directory.

    def _parent_up(self) -> None:
        assert self._uplink is not None
        for p in self._pubs.values():
            if p.scope > Scope.PROCESS:
                self._uplink.send({"Publish": self._pub_info[p.id]})
        for s in self._subs.values():
            if s.scope > Scope.PROCESS:
                self._uplink.send({"Subscribe": self._sub_frame(s)})

    def _parent_down(self) -> None:
        self._attach.routes_lost(Scope.PROCESS)
        self._answer_waiting()

    def _answer_waiting(self) -> None:
        for answer in self._answers.values():
            if not answer.done():
                answer.set_result(Status(Scope.PROCESS, "active"))

    def _from_parent(self, tag: str, f: dict[str, Any]) -> None:
        assert self._uplink is not None
        if tag == "PubStatus":
            at, state = Scope.parse(f["at"]), f["state"]
            answer = self._answers.get(f.get("id", ""))
            if answer is not None and not answer.done():
                answer.set_result(Status(at, state))
            elif f.get("id") in self._pubs:
                self._pubs[f["id"]].events.push(Status(at, state))
        elif tag == "Route":
            if f.get("sub") in self._subs:
                at, publisher = Scope.parse(f["at"]), f["publisher"]
                self._act_on(lambda out: self._attach.route(f["sub"], at, publisher, out))
        elif tag == "RouteCleared":
            self._attach.route_cleared(f["sub"], Scope.parse(f["at"]), f["publication"], f["name"])
        elif tag == "SubRefused":
            log.warning("the %s directory refused a subscription: %s", f.get("at"), f.get("reason"))
        elif tag == "Ping":
            self._uplink.send({"Pong": {"seq": f.get("seq")}})
        elif tag == "AskSessions":
            self._uplink.send({"Sessions": {"query": f.get("query"), "sessions": self._attach.describe()}})
        elif tag == "Heartbeat":
            pass
        else:
            raise ProtocolError(f"{tag} has no place on a directory link")

    # Attachments: carrying out what they decide.

    def _act_on(self, decide: Any) -> None:
        out: list[attach.Action] = []
        decide(out)
        for action in out:
            if isinstance(action, attach.Open):
                self._open(action)
            elif isinstance(action, attach.Close):
                self._close_opening(action.session, action.reason)
            elif isinstance(action, attach.Available):
                self._available(action)
            elif isinstance(action, attach.Dropped):
                self._dropped(action)
        if self._attach.has_idle() and self._retry is None and not self._closed:
            self._retry = asyncio.get_running_loop().call_later(RETRY, self._retry_idle)

    def _retry_idle(self) -> None:
        self._retry = None
        self._act_on(self._attach.retry)

    def _open(self, action: attach.Open) -> None:
        s = _SubSession(action.sub, action.at, action.publisher)
        self._held[action.session] = s
        s.timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT, self._open_timed_out, action.session)
        process = action.publisher["process"]
        conn = self._outbound.get(process)
        if isinstance(conn, Connection):
            self._send_open(conn, action.session)
        elif isinstance(conn, list):
            conn.append(action.session)
        else:
            self._outbound[process] = [action.session]
            self._spawn(self._dial(action.publisher))

    def _send_open(self, conn: Connection, session: int) -> None:
        s = self._held[session]
        s.conn = conn
        p = s.publisher
        conn.write({"Open": {"session": session, "publication": p["id"], "name": p["name"], "subscription": s.sub, "at": str(s.at)}})

    async def _dial(self, publisher: PubInfo) -> None:
        process = publisher["process"]
        host, _, port = publisher["addr"].rpartition(":")
        host = host.strip("[]")
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        far = not is_loopback(host)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), OPEN_TIMEOUT)
        except (OSError, ValueError, asyncio.TimeoutError) as e:
            self._dial_failed(process, f"could not connect to {publisher['addr']}: {e}")
            return
        try:
            if far and self._secret is not None:
                reader = writer = await secure.connect(reader, writer, self._secret)  # type: ignore[assignment]
            theirs = await greet(reader, writer, hello("process", self.id, self.name, role=self.role), first=True)
            if theirs["id"] != process:
                raise ProtocolError(f"{publisher['addr']} is process {theirs['id']}, not the publisher's {process}")
        except (ProtocolError, secure.HandshakeError, OSError, asyncio.IncompleteReadError) as e:
            writer.close()
            self._dial_failed(process, str(e))
            return
        waiting = self._outbound.get(process)
        conn = Connection(
            self, reader, writer, process, str(theirs.get("name", "")), outbound=True, far=far, peer_addr=f"{host}:{port}"
        )
        self._outbound[process] = conn
        for session in waiting if isinstance(waiting, list) else []:
            if session in self._held:
                self._send_open(conn, session)
        await conn.run()

    def _dial_failed(self, process: str, reason: str) -> None:
        waiting = self._outbound.pop(process, None)
        log.debug("could not reach a publisher: %s", reason)
        for session in waiting if isinstance(waiting, list) else []:
            self._session_failed(session, reason)

    def _session_failed(self, session: int, reason: str) -> None:
        s = self._held.pop(session, None)
        if s is not None and s.timer is not None:
            s.timer.cancel()
        self._act_on(lambda out: self._attach.ended(session, reason, out))

    def _open_timed_out(self, session: int) -> None:
        s = self._held.get(session)
        if s is not None and s.session is None:
            if s.conn is not None:
                s.conn.write({"Close": {"session": session, "reason": "open timed out"}})
            self._session_failed(session, "open timed out")

    def _close_opening(self, session: int, reason: str) -> None:
        s = self._held.pop(session, None)
        if s is None:
            return
        if s.timer is not None:
            s.timer.cancel()
        if s.conn is not None:
            if s.session is not None:
                s.session.closed = True
                s.conn.sessions.pop(session, None)
            s.conn.write({"Close": {"session": session, "reason": reason}})

    def _available(self, action: attach.Available) -> None:
        s = self._held[action.session]
        assert s.conn is not None
        session = Session(s.conn, action.session, action.publisher["name"], action.at)
        s.session = session
        subscription = self._subs[action.sub]
        s.conn.sessions[action.session] = (session, subscription)
        subscription.events.push(Available(session))

    def _dropped(self, action: attach.Dropped) -> None:
        subscription = self._subs.get(action.sub)
        if subscription is not None:
            subscription.events.push(
                Dropped(action.session, action.publisher["name"], action.at, action.publisher["process"], action.reason)
            )

    # Session connections.

    def _opened(self, conn: Connection, session: int) -> None:
        s = self._held.get(session)
        if s is not None and s.conn is conn and s.session is None:
            if s.timer is not None:
                s.timer.cancel()
            self._act_on(lambda out: self._attach.opened(session, out))

    def _ended_by_peer(self, conn: Connection, session: int, reason: str, entry: Any = None) -> None:
        if conn.outbound:
            s = self._held.get(session)
            if s is not None and s.conn is conn:
                self._session_failed(session, reason)
        elif entry is not None:
            sess, handle = entry
            handle.events.push(Dropped(session, sess.name, sess.matched_at, conn.remote_id, reason))

    def _connection_lost(self, conn: Connection, sessions: list[tuple[Session, Any]], reason: str) -> None:
        text = f"connection lost: {reason}"
        if conn.outbound:
            if self._outbound.get(conn.remote_id) is conn:
                del self._outbound[conn.remote_id]
            for session in [k for k, s in self._held.items() if s.conn is conn]:
                s = self._held.pop(session)
                if s.timer is not None:
                    s.timer.cancel()
            self._act_on(lambda out: self._attach.process_lost(conn.remote_id, text, out))
        else:
            self._inbound.discard(conn)
            for session, publication in sessions:
                publication.events.push(Dropped(session.id, session.name, session.matched_at, conn.remote_id, text))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        far = not is_loopback(str(peer[0]))
        try:
            if far and self._secret is not None:
                reader = writer = await secure.accept(reader, writer, self._secret)  # type: ignore[assignment]
            theirs = await greet(reader, writer, hello("process", self.id, self.name, role=self.role), first=False)
        except (ProtocolError, secure.HandshakeError, OSError, asyncio.IncompleteReadError) as e:
            log.info("refused a session connection from %s: %s", peer[0], e)
            writer.close()
            return
        conn = Connection(
            self, reader, writer, theirs["id"], str(theirs.get("name", "")), outbound=False, far=far,
            peer_addr=f"{peer[0]}:{peer[1]}",
        )
        self._inbound.add(conn)
        # (Not one of the node's tasks: it ends when `close` ends its connection.)
        await conn.run()

    def _inbound_open(self, conn: Connection, session: int, f: dict[str, Any]) -> None:
        publication = self._pubs.get(f.get("publication", ""))
        if session == 0:
            reason = "session 0 is reserved (for probes)"
        elif session in conn.sessions:
            reason = f"session {session} is already in use on this connection"
        elif len(conn.sessions) >= SESSIONS_PER_CONNECTION:
            reason = f"too many sessions on one connection (at most {SESSIONS_PER_CONNECTION})"
        elif publication is None or publication.name != f.get("name"):
            reason = f"no publication {json.dumps(f.get('name'))} here (retracted?)"
        elif conn.far and publication.scope < Scope.LAN:
            reason = f"{json.dumps(publication.name)} is published at {publication.scope} scope: not reachable from other hosts"
        else:
            at = Scope.parse(f.get("at", "PROCESS"))
            conn.write({"Opened": {"session": session}})
            s = Session(conn, session, publication.name, at)
            conn.sessions[session] = (s, publication)
            publication.events.push(Delivered(s))
            return
        conn.write({"Refused": {"session": session, "reason": reason}})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.id[:8]})"

