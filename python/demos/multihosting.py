"""The multihosting demo's messages, as the Rust demos declare them (``demos/src/lib.rs``)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from layer_cake_client import message

#: The most cells a table may have (as the Rust worker: the largest still fits in a frame).
MAX_CELLS = (16 << 20) // 32
#: What every worker of the demo publishes, with a uuid of its own.
WORKER_PREFIX = "test-multihosting:worker-10:"
#: The server's search for them.
WORKERS = "test-multihosting:worker-10:[-a-f0-9]+"


@message("Xy")
@dataclass
class Xy:
    """Asks for a table of ``x`` rows of ``y`` random floats."""

    x: int
    y: int


@message("Refused")
@dataclass
class Refused:
    """A worker's answer instead of a table, and why."""

    reason: str


def texture(xy: Xy) -> list[list[float]]:
    """The table an Xy asks for (the worker's whole job)."""
    return [[random.random() for _ in range(xy.y)] for _ in range(xy.x)]
