"""layer-cake for Python: publish and subscribe by name, with sessions and request/reply,
side by side with the Rust processes of a layer-cake composite.

::

    import asyncio
    from layer_cake_client import Node, Scope

    async def main():
        async with Node() as node:
            async with await node.subscribe("svc-.*", Scope.HOST) as sub:
                async for event in sub:
                    ...

The wire contract is ``docs/protocol.md`` of the layer-cake repository.
"""

from .caller import Answer, CallError, Caller, Instance, Policy
from .handles import Available, Delivered, Dropped, Message, Publication, Status, Subscription
from .message import DecodeError, message
from .node import Node, PublishError
from .scope import Scope, Search
from .session import (
    Incoming,
    Reply,
    RequestError,
    RequestFailed,
    RequestTimeout,
    SendError,
    Session,
    SessionLost,
)

__all__ = [
    "Answer",
    "CallError",
    "Caller",
    "Instance",
    "Policy",
    "Available",
    "DecodeError",
    "Delivered",
    "Dropped",
    "Incoming",
    "Message",
    "Node",
    "Publication",
    "PublishError",
    "Reply",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
    "Scope",
    "Search",
    "SendError",
    "Session",
    "SessionLost",
    "Status",
    "Subscription",
    "message",
]
