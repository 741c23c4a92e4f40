"""Messages and the names they travel under.

A message type declares its wire name, so a Python ``Xy`` and a Rust ``Xy`` are the same
message::

    @message("Xy")
    @dataclass
    class Xy:
        x: int
        y: int

Plain values travel under the standard names: ``str`` as ``string``, ``bool``, ``int``,
``float``, ``None`` as ``unit``, a ``list`` as ``list``, a ``dict`` as ``json``. Any JSON value
can also be sent under a name given with it (``send(value, type_name="Table")``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: Declared message types, by wire name.
_REGISTRY: dict[str, type] = {}


def message(name: str) -> Callable[[type[T]], type[T]]:
    """Declares that the decorated class travels as ``name`` (1 to 256 characters, no
    whitespace). A dataclass travels as an object of its fields; a class may instead define
    ``to_wire(self)`` and a ``from_wire(cls, value)`` classmethod."""
    if not name or len(name) > 256 or any(c.isspace() or ord(c) < 32 for c in name):
        raise ValueError(f"{name!r} is not a message name")

    def declare(cls: type[T]) -> type[T]:
        cls.__lc_name__ = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        return cls

    return declare


def wire_name(value: Any) -> str:
    """The name ``value`` travels under."""
    declared = getattr(type(value), "__lc_name__", None)
    if declared is not None:
        return declared
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "unit"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "json"
    raise TypeError(
        f"{type(value).__name__} has no message name: declare one with @message(...)"
    )


def to_wire(value: Any) -> Any:
    """``value`` as the JSON value it travels as."""
    to = getattr(value, "to_wire", None)
    if callable(to):
        return to()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


class DecodeError(Exception):
    """A message is not of the type it was decoded as."""


def from_wire(cls: type[T], value: Any) -> T:
    """The JSON ``value`` as a ``cls``."""
    try:
        load = getattr(cls, "from_wire", None)
        if callable(load):
            return load(value)
        if dataclasses.is_dataclass(cls):
            if not isinstance(value, dict):
                raise DecodeError(f"{cls.__name__} is an object, not {value!r}"[:200])
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in value.items() if k in names})  # type: ignore[return-value]
        if cls is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if isinstance(value, cls):
            return value
    except (TypeError, ValueError) as e:
        raise DecodeError(f"not a {cls.__name__}: {e}") from None
    raise DecodeError(f"not a {cls.__name__}: {str(value)[:200]}")


def declared(name: str) -> type | None:
    """The type declared under ``name``, if any."""
    return _REGISTRY.get(name)
