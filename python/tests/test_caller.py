"""The Python caller: policies, calls to all, retries, wait-for, and key affinity that agrees
with the Rust caller's."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess

import pytest
from conftest import bin_path
from messages import Ping, Pong
from test_mixed import rust_publisher

from layer_cake_client import CallError, Message, Node, Policy, Scope


async def three(procs, host):
    publishers = []
    for name in ["svc-a", "svc-b", "svc-c"]:
        p = rust_publisher(procs, host.addr, name)
        await p.expect("published", name, "active")
        publishers.append(p)
    return publishers


async def test_calls_spread_by_policy_and_a_call_to_all_answers_per_instance(procs, host_cake):
    host = await host_cake()
    await three(procs, host)
    async with Node(host.addr) as node:
        caller = await node.caller("svc-.*", Scope.HOST)
        assert await caller.wait_for(3, timeout=10) == 3
        turns = collections.Counter()
        for k in range(9):
            pong = await caller.one(Ping(k, "rr"), policy=Policy.ROUND_ROBIN, reply_type=Pong)
            turns[pong.name] += 1
        assert turns == {"svc-a": 3, "svc-b": 3, "svc-c": 3}, turns
        answers = await caller.all(Ping(1, "all"), timeout=5)
        assert sorted(a.reply.name for a in answers if a.ok) == ["svc-a", "svc-b", "svc-c"]
        with pytest.raises(CallError, match="1 of 4 instances|3 of 4 instances"):
            await caller.wait_for(4, timeout=0.2)


async def test_a_key_goes_where_the_rust_caller_sends_it(procs, host_cake):
    host = await host_cake()
    await three(procs, host)
    async with Node(host.addr) as node:
        caller = await node.caller("svc-.*", Scope.HOST)
        await caller.wait_for(3, timeout=10)
        for key in ["k1", "user-17", "another key"]:
            ours = {(await caller.one(Ping(1, key), key=key, reply_type=Pong)).name for _ in range(3)}
            assert len(ours) == 1, ours
            out = subprocess.run(
                [bin_path("layer-cake"), "call", "svc-.*", "Ping", '{"seq":1,"text":"k"}',
                 "--key", key, "--count", "3", "--json", "--directory", host.addr],
                capture_output=True, text=True, timeout=30,
                env={k: v for k, v in os.environ.items() if k != "LC_DIRECTORY"},
            )
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["instance"]["name"] == ours.pop(), key


async def test_an_idempotent_call_moves_on_with_its_call_id_and_a_plain_one_does_not(host_cake):
    host = await host_cake()
    async with Node(host.addr) as a, Node(host.addr) as b, Node(host.addr) as client:
        seen: list[tuple[str, int | None]] = []

        async def serve(publication, drop: bool) -> None:
            async for event in publication:
                if isinstance(event, Message):
                    seen.append((publication.name, event.message.call_id))
                    if drop:
                        del event  # dropped unanswered: the caller hears `unanswered`
                        continue
                    await event.message.reply("done")

        asyncio.ensure_future(serve(await a.publish("w-drops", Scope.HOST), drop=True))
        asyncio.ensure_future(serve(await b.publish("w-answers", Scope.HOST), drop=False))
        caller = await client.caller("w-.*", Scope.HOST)
        await caller.wait_for(2, timeout=10)
        # The key sends every call to the same first instance; find a key owned by w-drops.
        key = next(k for k in (f"k{n}" for n in range(100)) if owner(caller, k) == "w-drops")
        assert await caller.one("job", key=key, idempotent=True) == "done"
        assert [name for name, _ in seen] == ["w-drops", "w-answers"]
        assert seen[0][1] is not None and seen[0][1] == seen[1][1], seen
        seen.clear()
        with pytest.raises(CallError, match="unanswered"):
            await caller.one("job", key=key)
        assert seen == [("w-drops", None)]


def owner(caller, key: str) -> str:
    from layer_cake_client.caller import affinity_score, fnv1a

    k = fnv1a(key.encode())
    return max(caller.instances, key=lambda i: affinity_score(i.identity, k)).name


def test_a_script_calls_without_asyncio(procs, host_cake):
    from layer_cake_client.sync import Node as SyncNode

    host = asyncio.run(host_cake())
    publisher = rust_publisher(procs, host.addr, "svc-sync")
    asyncio.run(publisher.expect("published", "svc-sync", "active"))
    with SyncNode(host.addr) as node:
        pong = node.call("svc-sync", Ping(5, "sync"), reply_type=Pong)
        assert (pong.seq, pong.name) == (5, "svc-sync")
        [answer] = node.call_all("svc-.*", Ping(6, "all"))
        assert answer.ok and answer.reply.name == "svc-sync"
        with pytest.raises(CallError, match="0 of 1 instances"):
            node.call("nobody", Ping(1, "x"), timeout=0.2)


async def test_a_later_call_is_made_at_its_time_and_a_periodic_one_until_the_loop_stops(host_cake):
    host = await host_cake()
    async with Node(host.addr) as a, Node(host.addr) as client:
        heard: list[tuple[str, float]] = []
        publication = await a.publish("w-time", Scope.HOST)

        async def serve() -> None:
            async for event in publication:
                if isinstance(event, Message):
                    heard.append((event.message.body, asyncio.get_running_loop().time()))
                    await event.message.reply(f"re {event.message.body}")

        asyncio.ensure_future(serve())
        caller = await client.caller("w-time", Scope.HOST)
        await caller.wait_for(1, timeout=10)
        loop = asyncio.get_running_loop()
        asked = loop.time()
        assert await caller.later(0.05, "later") == "re later"
        assert heard[-1][0] == "later" and heard[-1][1] >= asked + 0.05
        # Cancelled before its time: never made (a marker after its time is all that is heard).
        dropped = caller.later(0.05, "dropped")
        dropped.cancel()
        # (Cancelled before its time, it has ended, unmade: nothing is left to make it later.)
        await asyncio.gather(dropped, return_exceptions=True)
        assert dropped.cancelled()
        assert await caller.one("marker") == "re marker"
        assert [h for h, _ in heard] == ["later", "marker"]
        replies = []
        async for reply in caller.every(0.02, "tick"):
            replies.append(reply)
            if len(replies) == 3:
                break
        assert replies == ["re tick"] * 3
        ticks = [t for h, t in heard if h == "tick"]
        assert ticks[2] - ticks[0] >= 0.04 - 0.005, ticks
