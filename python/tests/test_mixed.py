"""Python and Rust processes side by side, against the real daemons (loopback only)."""

from __future__ import annotations

import asyncio
import os

from conftest import bin_path
from messages import Ping, Pong

from layer_cake_client import Available, Dropped, Message, Node, Scope, Status


async def serve_pongs(publication, others: asyncio.Queue | None = None) -> None:
    """Answers every Ping on ``publication`` with a Pong, as the Rust publisher demo does;
    other events go to ``others``."""
    async for event in publication:
        if not isinstance(event, Message):
            if others is not None:
                others.put_nowait(event)
        else:
            ping = event.message.decode(Ping)
            await event.message.reply(Pong(ping.seq, ping.text, publication.name, os.getpid()))


async def next_of(handle, kind, timeout: float = 10.0):
    """The next event of ``kind`` (others are passed over)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        event = await handle.next(timeout=max(0.01, until - loop.time()))
        if isinstance(event, kind):
            return event


class heard_as_handle:
    """A queue of events read like a handle (``next(timeout)``)."""

    def __init__(self, q: asyncio.Queue) -> None:
        self.q = q

    async def next(self, timeout: float):
        return await asyncio.wait_for(self.q.get(), timeout)


def rust_publisher(procs, directory: str, name: str, scope: str = "HOST"):
    return procs(
        [bin_path("publisher"), "--name", name, "--scope", scope],
        {"LC_DIRECTORY": directory},
    )


def rust_subscriber(procs, directory: str, search: str, scope: str = "HOST"):
    return procs(
        [bin_path("subscriber"), "--search", search, "--scope", scope],
        {"LC_DIRECTORY": directory},
    )


async def test_a_python_subscriber_calls_a_rust_publisher(procs, host_cake):
    host = await host_cake()
    publisher = rust_publisher(procs, host.addr, "svc-rust")
    await publisher.expect("published", "svc-rust", "active")
    async with Node(host.addr, name="py-subscriber") as node:
        async with await node.subscribe("svc-.*", Scope.HOST) as sub:
            available = await next_of(sub, Available)
            assert available.session.name == "svc-rust"
            assert available.session.matched_at == Scope.HOST
            pong = await available.session.request(Ping(7, "hi"), timeout=5)
            assert pong == Pong(7, "hi", "svc-rust", publisher.popen.pid)
            await publisher.expect("request", "svc-rust", "seq=7")


async def test_a_rust_subscriber_calls_a_python_publisher(procs, host_cake):
    host = await host_cake()
    async with Node(host.addr, name="py-publisher") as node:
        publication = await node.publish("svc-py", Scope.HOST)
        assert publication.status == Status(Scope.HOST, "active")
        serving = asyncio.ensure_future(serve_pongs(publication))
        subscriber = rust_subscriber(procs, host.addr, "svc-py")
        await subscriber.expect("available", "svc-py", "HOST")
        line = await subscriber.expect("reply", "svc-py")
        assert "seq=1" in line and f"pid={os.getpid()}" in line, line
        serving.cancel()


async def test_python_falls_back_and_upgrades_across_group_and_host_with_rust(procs, host_cake, group_cake):
    host = await host_cake()
    group = await group_cake(host.addr)
    far = rust_publisher(procs, host.addr, "svc")
    await far.expect("published", "svc", "active")
    async with Node(group.addr, name="py-subscriber") as node:
        sub = await node.subscribe("svc", Scope.HOST)
        first = await next_of(sub, Available)
        assert first.session.matched_at == Scope.HOST
        assert first.session.peer_name == "publisher"
        # A nearer publisher of the name (in the composite, from Python): upgrade to it.
        other = await Node(group.addr, name="py-near").start()
        near = await other.publish("svc", Scope.GROUP)
        serving = asyncio.ensure_future(serve_pongs(near))
        dropped = await next_of(sub, Dropped)
        assert dropped.reason == "upgrade to a nearer publisher"
        upgraded = await next_of(sub, Available)
        assert upgraded.session.matched_at == Scope.GROUP
        assert upgraded.session.peer == other.id
        pong = await upgraded.session.request(Ping(1, "near"), timeout=5)
        assert pong.pid == os.getpid()
        # The near one goes: fall back to the Rust one at HOST.
        serving.cancel()
        await other.close()
        dropped = await next_of(sub, Dropped)
        assert dropped.scope == Scope.GROUP
        back = await next_of(sub, Available)
        assert back.session.matched_at == Scope.HOST
        pong = await back.session.request(Ping(2, "far"), timeout=5)
        assert pong.pid == far.popen.pid


async def test_a_rust_subscriber_follows_python_publishers_down_and_up(procs, host_cake, group_cake):
    host = await host_cake()
    group = await group_cake(host.addr)
    async with Node(host.addr, name="py-far") as far_node:
        far = await far_node.publish("svc", Scope.HOST)
        asyncio.ensure_future(serve_pongs(far))
        subscriber = rust_subscriber(procs, group.addr, "svc")
        await subscriber.expect("reply", "svc")
        near_node = await Node(group.addr, name="py-near").start()
        near = await near_node.publish("svc", Scope.GROUP)
        asyncio.ensure_future(serve_pongs(near))
        await subscriber.expect("dropped", "upgrade to a nearer publisher")
        await subscriber.expect("available", "svc", "GROUP")
        await subscriber.expect("reply", "svc")
        await near_node.close()
        await subscriber.expect("dropped", "svc", "GROUP")
        await subscriber.expect("available", "svc", "HOST")
        await subscriber.expect("reply", "svc")


async def test_a_standby_takes_over_when_the_holder_retracts(procs, host_cake):
    host = await host_cake()
    async with Node(host.addr, name="holder") as a, Node(host.addr, name="standby") as b:
        first = await a.publish("svc-one", Scope.HOST)
        assert first.status.active
        second = await b.publish("svc-one", Scope.HOST)
        assert second.status.at == Scope.HOST
        assert second.status.state == {"standby": {"holder": a.id}}, second.status
        asyncio.ensure_future(serve_pongs(first))
        heard: asyncio.Queue = asyncio.Queue()
        asyncio.ensure_future(serve_pongs(second, heard))
        subscriber = rust_subscriber(procs, host.addr, "svc-one")
        await subscriber.expect("reply", "svc-one")
        await first.retract()
        promoted = await next_of(heard_as_handle(heard), Status)
        assert promoted == Status(Scope.HOST, "active")
        await subscriber.expect("dropped", "svc-one")
        await subscriber.expect("available", "svc-one")
        line = await subscriber.expect("reply", "svc-one")
        assert f"pid={os.getpid()}" in line


async def test_python_to_python_in_one_process_and_through_the_directory(host_cake):
    host = await host_cake()
    async with Node(host.addr) as a, Node(host.addr) as b:
        here = await a.publish("svc-here", Scope.HOST)
        asyncio.ensure_future(serve_pongs(here))
        local = await a.subscribe("svc-here", Scope.HOST)
        event = await next_of(local, Available)
        assert event.session.matched_at == Scope.PROCESS
        assert (await event.session.request(Ping(3, "x"))).seq == 3
        remote = await b.subscribe("svc-here", Scope.HOST)
        event = await next_of(remote, Available)
        assert event.session.matched_at == Scope.HOST
        assert (await event.session.request(Ping(4, "y"))).seq == 4
