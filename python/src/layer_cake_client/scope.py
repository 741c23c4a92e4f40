"""How far a publication or subscription reaches, nearest first."""

from __future__ import annotations

import enum
import re


class Scope(enum.IntEnum):
    """A directory's reach. A smaller scope is nearer; ``PROCESS`` is this process alone."""

    PROCESS = 0
    GROUP = 1
    HOST = 2
    LAN = 3
    WAN = 4

    @classmethod
    def parse(cls, value: "Scope | str") -> "Scope":
        """A scope from its name (``"HOST"``, any case) or itself."""
        if isinstance(value, Scope):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(
                f"no scope {value!r} (PROCESS, GROUP, HOST or LAN)"
            ) from None

    def __str__(self) -> str:
        return self.name


_META = set("\\.+*?()|[]{}^$")


class Search:
    """A published name, or a regular expression that must match the whole name.

    The directories compile searches with Rust's ``regex`` syntax; the common subset (classes,
    groups, alternation, repetition) reads the same in Python's ``re``.
    """

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("an empty search matches nothing")
        self.text = text
        self.exact = not any(c in _META for c in text)
        try:
            self._re = None if self.exact else re.compile(text)
        except re.error as e:
            raise ValueError(f"{text!r} is not a regular expression: {e}") from None

    def matches(self, name: str) -> bool:
        """Whether ``name`` is matched, as a whole."""
        if self._re is None:
            return name == self.text
        return self._re.fullmatch(name) is not None

    def __repr__(self) -> str:
        return f"Search({self.text!r})"


def valid_name(name: str) -> bool:
    """A name may be published: 1 to 1024 characters, no whitespace or control characters."""
    return (
        0 < len(name) <= 1024
        and not any(c.isspace() or ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name)
    )
