"""A synchronous facade for scripts and the REPL: a node whose event loop runs on a thread of
its own.

::

    from layer_cake_client.sync import Node

    with Node() as node:
        table = node.call("test-multihosting:worker-10:.*", Xy(2, 2))
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .caller import Answer, Caller, Policy
from .node import Node as AsyncNode
from .scope import Scope


class Node:
    """A node for code that does not use asyncio. Every method blocks until it is done."""

    def __init__(self, directory: Any = "env", name: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="layer-cake", daemon=True)
        self._thread.start()
        self._node = AsyncNode(directory, name)
        self._callers: dict[tuple[str, Scope], Caller] = {}
        self._run(self._node.start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def id(self) -> str:
        """The process id the node joined with."""
        return self._node.id

    def _caller(self, search: str, scope: Scope | str, count: int, timeout: float) -> Caller:
        key = (search, Scope.parse(scope))
        if key not in self._callers:
            self._callers[key] = self._run(self._node.caller(search, key[1]))
        self._run(self._callers[key].wait_for(count, timeout))
        return self._callers[key]

    def call(
        self,
        search: str,
        message: Any,
        scope: Scope | str = Scope.HOST,
        policy: Policy | str = Policy.NEAREST_FIRST,
        key: str | None = None,
        timeout: float = 5.0,
        count: int = 1,
        **options: Any,
    ) -> Any:
        """Calls one instance of ``search`` (once ``count`` are found) and returns its reply;
        the options are :meth:`Caller.one`'s."""
        caller = self._caller(search, scope, count, timeout)
        return self._run(caller.one(message, policy=policy, key=key, timeout=timeout, **options))

    def call_all(
        self, search: str, message: Any, scope: Scope | str = Scope.HOST, timeout: float = 5.0, count: int = 1, **options: Any
    ) -> list[Answer]:
        """Calls every instance of ``search`` (once ``count`` are found): one answer each."""
        caller = self._caller(search, scope, count, timeout)
        return self._run(caller.all(message, timeout=timeout, **options))

    def cast(self, search: str, message: Any, scope: Scope | str = Scope.HOST, timeout: float = 5.0, **options: Any) -> None:
        """Sends a one-way message to one instance of ``search``."""
        caller = self._caller(search, scope, 1, timeout)
        self._run(caller.cast(message, **options))

    def close(self) -> None:
        """Closes the node and stops its thread."""
        if self._thread.is_alive():
            self._run(self._node.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
