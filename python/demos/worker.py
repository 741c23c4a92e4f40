#!/usr/bin/env python3
"""multihosting worker, in Python: publishes ``test-multihosting:worker-10:<uuid>`` and
answers every ``Xy`` with a table of random floats, beside the Rust server and workers.

Run as a role of a composite (it finds its directory in ``LC_DIRECTORY``)::

    layer-cake add python/demos/worker.py worker --role-count=8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multihosting import MAX_CELLS, WORKER_PREFIX, Refused, Xy, texture  # noqa: E402

from layer_cake_client import Delivered, Dropped, Message, Node, Scope  # noqa: E402


async def serve(scope: Scope) -> None:
    served = 0
    async with Node(name="worker.py") as node:
        # SIGTERM or Ctrl-C: the node closes, its publication ends, and so does the loop.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(node.close()))
        name = f"{WORKER_PREFIX}{uuid.uuid4()}"
        publication = await node.publish(name, scope)
        print(f"published {name} {scope}", flush=True)
        async for event in publication:
            if isinstance(event, Message):
                m = event.message
                if m.is_(Xy):
                    xy = m.decode(Xy)
                    if xy.x * xy.y > MAX_CELLS:
                        await m.reply(Refused(f"a table of {xy.x} by {xy.y} is over {MAX_CELLS} cells"))
                    else:
                        served += 1
                        await m.reply(texture(xy), type_name="Table")
                else:
                    await m.reply(Refused(f"{m.type_name} is not a request this worker knows"))
            elif isinstance(event, Delivered):
                print(f"serving {event.session.peer_name} session={event.session.id}", flush=True)
            elif isinstance(event, Dropped):
                print(f"dropped session={event.session} reason={event.reason!r}", flush=True)
    print(f"served {served} tables", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scope", default="HOST", help="PROCESS, GROUP, HOST or LAN (default HOST)")
    args = parser.parse_args()
    asyncio.run(serve(Scope.parse(args.scope)))


if __name__ == "__main__":
    main()
