"""Calls to every instance a search matches: one (by a policy), all, casts, wait-for.

The same policies as the Rust runtime's caller, with the same key-affinity hash, so a Python
and a Rust caller send a key to the same instance (``docs/protocol.md``, "Key affinity").
Hedging and ejection of frozen instances are the Rust caller's alone for now.
"""

from __future__ import annotations

import asyncio
import enum
import random
from dataclasses import dataclass
from typing import Any, AsyncIterator

from .handles import Available, Dropped, Message, Subscription
from .scope import Scope
from .session import RequestError, RequestFailed, RequestTimeout, Session, SessionLost

_MASK = (1 << 64) - 1


class Policy(str, enum.Enum):
    """How a call chooses its instance."""

    NEAREST_FIRST = "nearest-first"
    """The nearest scope, then the fewest calls in flight (the default)."""
    LEAST_OUTSTANDING = "least-outstanding"
    """The fewest calls in flight, whatever the scope; ties taken in turn."""
    ROUND_ROBIN = "round-robin"
    """Each instance in turn."""
    RANDOM = "random"
    """Any instance, at random."""
    KEY_AFFINITY = "key-affinity"
    """The instance the call's key belongs to (rendezvous hashing)."""


class CallError(Exception):
    """A call got no answer. ``kind`` says why: ``no-instances``, ``busy`` (every instance
    at its bound until the deadline), ``timeout``, ``failed`` (the instance's ``Failed``),
    ``lost`` (the instance went), or ``too-few`` (``wait_for``)."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


def _call_error(e: RequestError) -> CallError:
    if isinstance(e, RequestTimeout):
        return CallError("timeout", str(e))
    if isinstance(e, RequestFailed):
        return CallError("failed", str(e))
    return CallError("lost", str(e))


def fnv1a(data: bytes) -> int:
    """64-bit FNV-1a."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & _MASK
    return h


def affinity_score(identity: int, key: int) -> int:
    """An instance's rendezvous score for a key (SplitMix64's finaliser of the pair)."""
    z = identity ^ (((key << 29) | (key >> 35)) & _MASK)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class Instance:
    """One instance a caller may call: a session with one publisher of a matching name."""

    def __init__(self, session: Session) -> None:
        self.session = session
        #: The published name.
        self.name = session.name
        #: The scope it was matched at.
        self.at: Scope = session.matched_at
        #: The publisher's process.
        self.process = session.peer
        self.in_flight = 0
        self.identity = fnv1a(f"{self.name}\0{self.process}".encode())

    def __repr__(self) -> str:
        return f"Instance({self.name!r}, {self.at}, {self.process[:8]})"


@dataclass
class Answer:
    """One instance's answer to a call to all: its reply, or the error in its place."""

    instance: Instance
    reply: Any = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Caller:
    """Calls over every instance a subscription finds (``await node.caller(search, scope)``).

    ``per_instance`` bounds the calls in flight on one instance (more wait for room within
    their deadline); ``deadline`` is a call's default, in seconds.
    """

    def __init__(self, subscription: Subscription, per_instance: int = 64, deadline: float = 5.0) -> None:
        self._subscription = subscription
        self._instances: list[Instance] = []
        self._changed = asyncio.Condition()
        self._per_instance = max(1, per_instance)
        self.deadline = deadline
        self._cursor = 0
        self._next_call = random.randrange(1, 1 << 62)
        self._task = asyncio.ensure_future(self._feed())

    async def _feed(self) -> None:
        async for event in self._subscription:
            if isinstance(event, Available):
                self._instances.append(Instance(event.session))
            elif isinstance(event, Dropped):
                self._instances = [i for i in self._instances if i.session.id != event.session]
            elif isinstance(event, Message) and event.message.is_request:
                event.message.fail("a caller takes no requests", "undeliverable")
            async with self._changed:
                self._changed.notify_all()

    @property
    def instances(self) -> list[Instance]:
        """The instances now, in the order they came."""
        return [i for i in self._instances if not i.session.closed]

    async def wait_for(self, count: int, timeout: float = 5.0) -> int:
        """Waits until at least ``count`` instances are there (at most ``timeout`` s); how many
        there are. Raises :class:`CallError` if fewer came."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.instances) >= count), timeout)
            except asyncio.TimeoutError:
                raise CallError("too-few", f"{len(self.instances)} of {count} instances within {timeout:g} s") from None
        return len(self.instances)

    def _pick(self, policy: Policy, key: str | None, exclude: set[int]) -> Instance | None | bool:
        """The instance to call; ``True`` to wait for room; ``None`` when there is none."""
        instances = self.instances  # (one snapshot: its order is the order they came in)
        live = [(n, i) for n, i in enumerate(instances) if i.session.id not in exclude]
        if not live:
            return None
        if policy == Policy.KEY_AFFINITY and key is not None:
            k = fnv1a(key.encode())
            _, owner = max(live, key=lambda p: (affinity_score(p[1].identity, k), p[0]))
            return owner if owner.in_flight < self._per_instance else True
        room = [(n, i) for n, i in live if i.in_flight < self._per_instance]
        if not room:
            return True
        if policy == Policy.RANDOM:
            return random.choice(room)[1]
        turn = sorted(room, key=lambda p: (p[0] - self._cursor) % len(instances))
        if policy == Policy.ROUND_ROBIN:
            n, chosen = turn[0]
        elif policy == Policy.LEAST_OUTSTANDING:
            n, chosen = min(turn, key=lambda p: p[1].in_flight)
        else:
            n, chosen = min(turn, key=lambda p: (p[1].at, p[1].in_flight))
        self._cursor = n + 1
        return chosen

    async def _lease(self, policy: Policy, key: str | None, exclude: set[int], until: float) -> Instance:
        loop = asyncio.get_running_loop()
        async with self._changed:
            while True:
                chosen = self._pick(policy, key, exclude)
                if chosen is None:
                    raise CallError("no-instances", f"no instance of {self._subscription.search!r}")
                if isinstance(chosen, Instance):
                    chosen.in_flight += 1
                    return chosen
                left = until - loop.time()
                try:
                    await asyncio.wait_for(self._changed.wait(), max(0.0, left))
                except asyncio.TimeoutError:
                    raise CallError("busy", "every instance is at its bound; no room within the deadline") from None

    async def _release(self, instance: Instance) -> None:
        instance.in_flight -= 1
        async with self._changed:
            self._changed.notify_all()

    async def one(
        self,
        message: Any,
        policy: Policy | str = Policy.NEAREST_FIRST,
        key: str | None = None,
        timeout: float | None = None,
        idempotent: bool = False,
        retries: int = 1,
        reply_type: type | None = None,
        type_name: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Sends ``message`` to one instance, chosen by ``policy`` (a ``key`` implies key
        affinity), and returns its reply (with ``raw``, as a :class:`Reply`, undecoded). An
        ``idempotent`` call whose instance goes (or drops it unanswered) is tried on up to
        ``retries`` others, every try with one call id."""
        policy = Policy(policy) if key is None else Policy.KEY_AFFINITY
        loop = asyncio.get_running_loop()
        until = loop.time() + (self.deadline if timeout is None else timeout)
        call = None
        if idempotent:
            self._next_call += 1
            call = self._next_call
        tries = 1 + (retries if idempotent else 0)
        tried: set[int] = set()
        last: Exception | None = None
        for _ in range(tries):
            try:
                instance = await self._lease(policy, key, tried, until)
            except CallError:
                if last is not None:
                    raise _call_error(last) from last
                raise
            left = max(0.0, until - loop.time())
            try:
                if raw:
                    return await instance.session.request_raw(message, left, type_name, call)
                return await instance.session.request(message, left, reply_type, type_name, call)
            except (SessionLost, RequestFailed) as e:
                retryable = isinstance(e, SessionLost) or e.kind in ("unanswered", "undeliverable")
                if not retryable:
                    raise _call_error(e) from e
                last = e
                tried.add(instance.session.id)
            except RequestError as e:
                raise _call_error(e) from e
            finally:
                await self._release(instance)
        assert last is not None
        raise _call_error(last) from last

    async def all(
        self, message: Any, timeout: float | None = None, reply_type: type | None = None, type_name: str | None = None
    ) -> list[Answer]:
        """Sends ``message`` to every instance at once; one :class:`Answer` each, all within
        one deadline (a slow instance costs only its own entry)."""
        deadline = self.deadline if timeout is None else timeout

        async def ask(i: Instance) -> Answer:
            i.in_flight += 1
            try:
                return Answer(i, reply=await i.session.request(message, deadline, reply_type, type_name))
            except RequestError as e:
                return Answer(i, error=e)
            finally:
                await self._release(i)

        return list(await asyncio.gather(*(ask(i) for i in self.instances)))

    async def cast(self, message: Any, policy: Policy | str = Policy.NEAREST_FIRST, key: str | None = None, type_name: str | None = None) -> Instance:
        """Sends a one-way message to one instance; which one."""
        policy = Policy(policy) if key is None else Policy.KEY_AFFINITY
        until = asyncio.get_running_loop().time() + self.deadline
        instance = await self._lease(policy, key, set(), until)
        try:
            await instance.session.send(message, type_name)
        finally:
            await self._release(instance)
        return instance

    async def cast_all(self, message: Any, type_name: str | None = None) -> list[Answer]:
        """Sends a one-way message to every instance; an entry each (an error if unsent)."""
        answers = []
        for i in self.instances:
            try:
                await i.session.send(message, type_name)
                answers.append(Answer(i))
            except Exception as e:  # a send's errors are the entry's
                answers.append(Answer(i, error=e))
        return answers

    def later(self, delay: float, message: Any, **options: Any) -> "asyncio.Task[Any]":
        """Makes the call with :meth:`one` ``delay`` seconds from now; the task's result is the
        reply (or its :class:`CallError`). Cancelling the task before then means no call."""

        async def run() -> Any:
            await asyncio.sleep(max(0.0, delay))
            return await self.one(message, **options)

        return asyncio.ensure_future(run())

    async def every(self, period: float, message: Any, **options: Any) -> AsyncIterator[Any]:
        """Makes the call with :meth:`one` every ``period`` seconds, the first at once, and
        yields each reply (or the :class:`CallError` in its place) until the loop that reads
        it stops. A period that passes while a call waits is not made up for."""
        loop = asyncio.get_running_loop()
        period = max(period, 0.001)
        due = loop.time()
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = max(due + period, loop.time())
            try:
                yield await self.one(message, **options)
            except CallError as e:
                yield e

    async def close(self) -> None:
        """Stops following the subscription (and clears it)."""
        self._task.cancel()
        await self._subscription.clear()
