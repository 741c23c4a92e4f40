"""The demo messages, as the Rust demos declare them (``demos/src/lib.rs``)."""

from dataclasses import dataclass

from layer_cake_client import message


@message("Ping")
@dataclass
class Ping:
    seq: int
    text: str


@message("Pong")
@dataclass
class Pong:
    seq: int
    text: str
    name: str
    pid: int
