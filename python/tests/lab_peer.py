#!/usr/bin/env python3
"""A Python publisher or subscriber for the namespace lab, printing what it sees as the Rust
demos do: ``lab_peer.py publish NAME SCOPE`` answers Ping with Pong; ``lab_peer.py subscribe
SEARCH SCOPE`` sends a Ping on each session and prints ``available ...`` and ``reply ...``."""

import asyncio
import os
import sys

from messages import Ping, Pong

from layer_cake_client import Available, Message, Node, Scope


async def main(mode: str, name: str, scope: str) -> None:
    async with Node(name=f"py-{mode}") as node:
        if mode == "publish":
            publication = await node.publish(name, Scope.parse(scope))
            print(f"published {name} {scope} at={publication.status.at}", flush=True)
            async for event in publication:
                if isinstance(event, Message):
                    ping = event.message.decode(Ping)
                    await event.message.reply(Pong(ping.seq, ping.text, name, os.getpid()))
        else:
            subscription = await node.subscribe(name, Scope.parse(scope))
            print(f"subscribed {name} {scope}", flush=True)
            async for event in subscription:
                if isinstance(event, Available):
                    s = event.session
                    print(f"available {s.name} {s.matched_at} session={s.id} addr={s.peer_addr}", flush=True)
                    pong = await s.request(Ping(1, "lab"), timeout=5, reply_type=Pong)
                    print(f"reply {pong.name} seq={pong.seq} pid={pong.pid}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
