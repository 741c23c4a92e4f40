"""Bad input, both ways: what the Rust daemons and processes answer to frames a Python client
gets wrong, and what the Python client refuses before anything is sent."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from conftest import bin_path
from messages import Ping
from test_mixed import next_of, rust_publisher, serve_pongs

from layer_cake_client import Available, Node, PublishError, Scope
from layer_cake_client.wire import MAX_SESSION_FRAME, frame, greet, hello, read_frame, tagged


async def connect(addr: str, kind: str = "process", me: str | None = None):
    host, _, port = addr.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    theirs = await greet(reader, writer, hello(kind, me or str(uuid.uuid4()), "raw-test"), first=True)
    return reader, writer, theirs


async def next_frame(reader, limit: int = MAX_SESSION_FRAME):
    message = await asyncio.wait_for(read_frame(reader, limit), 10)
    return tagged(message) if message is not None else (None, {})


async def test_a_directory_refuses_a_name_with_whitespace(host_cake):
    host = await host_cake()
    me = str(uuid.uuid4())
    reader, writer, _ = await connect(host.addr, me=me)
    ident = str(uuid.uuid4())
    writer.write(frame({"Publish": {"id": ident, "name": "a b", "scope": "HOST", "process": me, "addr": "127.0.0.1:9"}}))
    tag, f = await next_frame(reader)
    assert tag == "PubStatus" and f["id"] == ident, (tag, f)
    assert "is not a name" in f["state"]["refused"]["reason"], f


async def test_a_process_may_list_only_for_itself(host_cake):
    host = await host_cake()
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    reader, writer, _ = await connect(host.addr, me=me)
    pub, sub = str(uuid.uuid4()), str(uuid.uuid4())
    writer.write(frame({"Publish": {"id": pub, "name": "svc", "scope": "HOST", "process": other, "addr": "127.0.0.1:9"}}))
    tag, f = await next_frame(reader)
    assert (tag, f["id"]) == ("PubStatus", pub), (tag, f)
    assert f"is for process {other}, not this connection's {me}" in f["state"]["refused"]["reason"], f
    writer.write(frame({"Subscribe": {"id": sub, "search": "svc", "scope": "HOST", "process": other}}))
    tag, f = await next_frame(reader)
    assert (tag, f["id"]) == ("SubRefused", sub), (tag, f)
    # Its own listings still go through on the same connection.
    writer.write(frame({"Publish": {"id": pub, "name": "svc", "scope": "HOST", "process": me, "addr": "127.0.0.1:9"}}))
    tag, f = await next_frame(reader)
    assert (tag, f["state"]) == ("PubStatus", "active"), (tag, f)


async def test_a_rust_publisher_refuses_session_0_and_fails_data_on_no_session(procs, host_cake):
    host = await host_cake()
    publisher = rust_publisher(procs, host.addr, "svc-raw")
    await publisher.expect("published", "svc-raw", "active")
    # Where it listens and its publication id, as a subscriber learns them: from a Route.
    async with Node(host.addr) as node:
        sub = await node.subscribe("svc-raw", Scope.HOST)
        await next_of(sub, Available)
        route = node._held[1].publisher
    reader, writer, theirs = await connect(route["addr"])
    assert theirs["id"] == route["process"]
    open_0 = {"session": 0, "publication": route["id"], "name": "svc-raw", "subscription": str(uuid.uuid4()), "at": "HOST"}
    writer.write(frame({"Open": open_0}))
    tag, f = await next_frame(reader)
    assert (tag, f["session"]) == ("Refused", 0), (tag, f)
    writer.write(frame({"Data": {"session": 5, "corr": 9, "type": "Ping", "body": {"seq": 1, "text": "x"}}}))
    tag, f = await next_frame(reader)
    assert (tag, f["reply"], f["kind"]) == ("Failed", 9, "undeliverable"), (tag, f)
    # A frame that is not JSON closes the connection (and only it).
    writer.write(b"\x00\x00\x00\x03{{{")
    assert (await next_frame(reader))[0] is None
    writer.close()


async def test_a_bad_greeting_gets_no_answer_and_a_closed_connection(host_cake):
    host = await host_cake()
    h, _, p = host.addr.rpartition(":")
    reader, writer = await asyncio.open_connection(h, int(p))
    bad = hello("process", str(uuid.uuid4()), "raw-test")
    bad["Hello"]["version"] = 1
    writer.write(frame(bad))
    assert await asyncio.wait_for(reader.read(), 10) == b""


async def test_a_python_publisher_survives_bad_frames_and_keeps_serving(host_cake):
    host = await host_cake()
    async with Node(host.addr) as node, Node(host.addr) as other:
        publication = await node.publish("svc-py", Scope.HOST)
        asyncio.ensure_future(serve_pongs(publication))
        # Garbage after a good greeting, a frame over the limit, an unknown message.
        for junk in [b"\x00\x00\x00\x03{{{", b"\xff\xff\xff\xff", frame({"Nonsense": {}})]:
            reader, writer, _ = await connect(node.session_addr)
            writer.write(junk)
            assert await asyncio.wait_for(reader.read(), 10) == b""
        # Data on no session, and session 0 (a probe): Failed, and the connection stays.
        reader, writer, _ = await connect(node.session_addr)
        writer.write(frame({"Data": {"session": 0, "corr": 4, "type": "probe", "body": None}}))
        tag, f = await next_frame(reader)
        assert (tag, f["reply"], f["kind"]) == ("Failed", 4, "undeliverable")
        writer.write(frame({"Open": {"session": 0, "publication": publication.id, "name": "svc-py", "subscription": "x", "at": "HOST"}}))
        assert (await next_frame(reader))[0] == "Refused"
        writer.close()
        sub = await other.subscribe("svc-py", Scope.HOST)
        event = await next_of(sub, Available)
        assert (await event.session.request(Ping(1, "still here"))).seq == 1


async def test_the_python_client_refuses_bad_input_before_sending():
    async with Node(None) as node:
        for name in ["a b", "", "tab\there", "x" * 1025]:
            with pytest.raises(PublishError):
                await node.publish(name, Scope.PROCESS)
        with pytest.raises(ValueError, match="not a regular expression"):
            await node.subscribe("s)|(x", Scope.PROCESS)
        with pytest.raises(ValueError, match="no scope"):
            await node.subscribe("svc", "WIDE")
        await node.publish("svc", Scope.PROCESS)
        with pytest.raises(PublishError, match="already published"):
            await node.publish("svc", Scope.PROCESS)


def test_the_binaries_are_there():
    assert bin_path("host-cake")
