"""The encrypted LAN: the LAN's secret, the Noise handshake, and an encrypted byte stream.

The same as the Rust runtime (``runtime/src/secure.rs``, ``docs/security.md``): a connection
between two hosts first runs ``Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`` with the LAN's secret as
the pre-shared key and ``layer-cake/1`` as the prologue (two messages, each a 2-byte big-endian
length and the message); then every byte travels in Noise transport messages of at most
65,535 bytes (2-byte length, ciphertext with its 16-byte tag). Connections within a host are
never encrypted.

X25519 and ChaCha20-Poly1305 come from the ``cryptography`` package: the ``lan`` extra
(``pip install './python[lan]'``). BLAKE2s and HMAC are the standard library's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import stat
import struct
from pathlib import Path
from typing import Any

NOISE = b"Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"
PROLOGUE = b"layer-cake/1"
MAX_MESSAGE = 65535
TAG = 16
MAX_PLAIN = MAX_MESSAGE - TAG
MAX_HANDSHAKE_MESSAGE = 64
HASHLEN = 32


class SecretError(Exception):
    """A secret file that cannot be used: unreadable, readable by others, or not 64 hex digits."""


class HandshakeError(Exception):
    """The peer does not hold this LAN's secret (or broke the handshake)."""


def read_secret(path: str | os.PathLike[str]) -> bytes:
    """The 32 bytes in a secret file: 64 hex digits (whitespace around them allowed), in a file
    only its owner may read or write."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text()
    except OSError as e:
        raise SecretError(f"secret file {p}: {e}") from None
    if mode & 0o077:
        raise SecretError(f"secret file {p} is open to others (mode {stat.S_IMODE(mode):o}; chmod 600 it)")
    digits = text.strip()
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise SecretError(f"secret file {p} must hold 64 hex digits (32 bytes; `layer-cake secret FILE` makes one)")
    return bytes.fromhex(digits)


def secret_from_env() -> bytes | None:
    """The secret named by ``LC_SECRET_FILE``, if any."""
    path = os.environ.get("LC_SECRET_FILE")
    return read_secret(path) if path else None


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import x25519
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    except ImportError:
        raise HandshakeError(
            "an encrypted LAN needs the `cryptography` package: pip install './python[lan]'"
        ) from None
    return x25519, ChaCha20Poly1305, Encoding, PublicFormat


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2s).digest()


def _hkdf(ck: bytes, ikm: bytes, n: int) -> list[bytes]:
    temp = _hmac(ck, ikm)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = _hmac(temp, prev + bytes([i]))
        out.append(prev)
    return out


class _Cipher:
    """A Noise CipherState: a key and a counter."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = None
        self.n = 0
        if key is not None:
            _, ChaCha20Poly1305, _, _ = _crypto()
            self._aead = ChaCha20Poly1305(key)

    def _nonce(self) -> bytes:
        nonce = b"\x00\x00\x00\x00" + struct.pack("<Q", self.n)
        self.n += 1
        return nonce

    def encrypt(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        return self._aead.encrypt(self._nonce(), plaintext, ad)

    def decrypt(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        try:
            return self._aead.decrypt(self._nonce(), ciphertext, ad)
        except Exception:
            raise HandshakeError("a message did not decrypt") from None


class _Handshake:
    """The NNpsk0 handshake's symmetric state (``-> psk, e`` then ``<- e, ee``)."""

    def __init__(self, psk: bytes) -> None:
        self.x25519, _, self._enc, self._fmt = _crypto()
        self.h = NOISE if len(NOISE) == HASHLEN else hashlib.blake2s(NOISE).digest()
        self.ck = self.h
        self.cipher = _Cipher()
        self._mix_hash(PROLOGUE)
        self.psk = psk
        self.e = self.x25519.X25519PrivateKey.generate()
        self.e_pub = self.e.public_key().public_bytes(self._enc.Raw, self._fmt.Raw)

    def _mix_hash(self, data: bytes) -> None:
        self.h = hashlib.blake2s(self.h + data).digest()

    def _mix_key(self, ikm: bytes) -> None:
        self.ck, k = _hkdf(self.ck, ikm, 2)
        self.cipher = _Cipher(k)

    def _mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, h, k = _hkdf(self.ck, ikm, 3)
        self._mix_hash(h)
        self.cipher = _Cipher(k)

    def _encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ct = self.cipher.encrypt(self.h, plaintext)
        self._mix_hash(ct)
        return ct

    def _decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        pt = self.cipher.decrypt(self.h, ciphertext)
        self._mix_hash(ciphertext)
        return pt

    def _send_e(self) -> bytes:
        self._mix_hash(self.e_pub)
        self._mix_key(self.e_pub)  # (psk mode: every `e` is also mixed into the key)
        return self.e_pub

    def _read_e(self, message: bytes) -> bytes:
        if len(message) < 32:
            raise HandshakeError("a handshake message too short")
        re = message[:32]
        self._mix_hash(re)
        self._mix_key(re)
        return re

    def _dh(self, re: bytes) -> bytes:
        return self.e.exchange(self.x25519.X25519PublicKey.from_public_bytes(re))

    def first(self) -> bytes:
        """The initiator's message: psk, e, and an empty payload."""
        self._mix_key_and_hash(self.psk)
        return self._send_e() + self._encrypt_and_hash(b"")

    def read_first(self, message: bytes) -> None:
        self._mix_key_and_hash(self.psk)
        re = self._read_e(message)
        self._re = re
        self._decrypt_and_hash(message[32:])

    def second(self) -> bytes:
        """The responder's message: e, ee, and an empty payload."""
        out = self._send_e()
        self._mix_key(self._dh(self._re))
        return out + self._encrypt_and_hash(b"")

    def read_second(self, message: bytes) -> None:
        re = self._read_e(message)
        self._mix_key(self._dh(re))
        self._decrypt_and_hash(message[32:])

    def split(self) -> tuple[_Cipher, _Cipher]:
        """The transport keys: initiator to responder, and back."""
        k1, k2 = _hkdf(self.ck, b"", 2)
        return _Cipher(k1), _Cipher(k2)


async def _read_message(reader: asyncio.StreamReader, limit: int) -> bytes:
    (length,) = struct.unpack(">H", await reader.readexactly(2))
    if length > limit:
        raise HandshakeError(f"a message of {length} bytes (at most {limit})")
    return await reader.readexactly(length)


class SecureStream:
    """An encrypted byte stream over a connection, read and written as the plain streams are
    (``readexactly``, ``write``, ``drain``, ``close``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, send: _Cipher, receive: _Cipher) -> None:
        self._reader, self._writer = reader, writer
        self._send, self._receive = send, receive
        self._plain = bytearray()
        #: The underlying transport (for its write buffer's size).
        self.transport = writer.transport

    async def readexactly(self, n: int) -> bytes:
        while len(self._plain) < n:
            try:
                message = await _read_message(self._reader, MAX_MESSAGE)
            except asyncio.IncompleteReadError as e:
                raise asyncio.IncompleteReadError(bytes(self._plain), n) from e
            if len(message) < TAG:
                raise ConnectionError("an encrypted message shorter than its tag")
            try:
                self._plain += self._receive.decrypt(b"", message)
            except HandshakeError:
                raise ConnectionError("a message did not decrypt (changed, replayed or reordered)") from None
        out = bytes(self._plain[:n])
        del self._plain[:n]
        return out

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_PLAIN):
            sealed = self._send.encrypt(b"", data[start : start + MAX_PLAIN])
            self._writer.write(struct.pack(">H", len(sealed)) + sealed)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> SecureStream:
    """Runs the handshake as the side that connected."""
    hs = _Handshake(secret)
    first = hs.first()
    writer.write(struct.pack(">H", len(first)) + first)
    try:
        hs.read_second(await asyncio.wait_for(_read_message(reader, MAX_HANDSHAKE_MESSAGE), 5.0))
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        raise HandshakeError("refused: the peer does not hold this LAN's secret (or none)") from None
    send, receive = hs.split()
    return SecureStream(reader, writer, send, receive)


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> SecureStream:
    """Runs the handshake as the side that accepted."""
    hs = _Handshake(secret)
    try:
        hs.read_first(await asyncio.wait_for(_read_message(reader, MAX_HANDSHAKE_MESSAGE), 5.0))
    except HandshakeError:
        raise HandshakeError("refused: the peer does not hold this LAN's secret") from None
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        raise HandshakeError("no handshake from the peer") from None
    second = hs.second()
    writer.write(struct.pack(">H", len(second)) + second)
    receive, send = hs.split()
    return SecureStream(reader, writer, send, receive)
