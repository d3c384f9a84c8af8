"""Content ids: the BLAKE3 hash of a blob, printed as ``b3`` + lowercase
unpadded base32 (52 characters), with exactly one spelling per id."""

from __future__ import annotations

import base64
from typing import BinaryIO

import blake3

from .errors import VerificationError

PREFIX = "b3"
_LEN = 52
_ALPHABET = set("abcdefghijklmnopqrstuvwxyz234567")


def from_digest(digest: bytes) -> str:
    """The content id of a 32-byte BLAKE3 digest."""
    if len(digest) != 32:
        raise ValueError(f"a BLAKE3 digest is 32 bytes, got {len(digest)}")
    return PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()


def of(data: bytes) -> str:
    """The content id of ``data``."""
    return from_digest(blake3.blake3(data).digest())


def of_file(f: BinaryIO, chunk: int = 1 << 20) -> str:
    """The content id of a file's remaining bytes, read in chunks."""
    h = blake3.blake3()
    while block := f.read(chunk):
        h.update(block)
    return from_digest(h.digest())


def parse(s: str) -> bytes:
    """The 32 bytes a content id names; refuses every other spelling."""
    if not isinstance(s, str) or not s.startswith(PREFIX):
        raise VerificationError(f"content id must start with `b3`: {s!r}")
    body = s[len(PREFIX):]
    if len(body) != _LEN:
        raise VerificationError(
            f"content id must be `b3` followed by 52 base32 characters, got {len(s)} characters"
        )
    if not set(body) <= _ALPHABET:
        raise VerificationError("content id contains a character outside lowercase base32 (a-z, 2-7)")
    raw = base64.b32decode(body.upper() + "====")
    # 52 characters carry 260 bits: the 4 spare bits must be zero
    if from_digest(raw) != s:
        raise VerificationError("content id contains a character outside lowercase base32 (a-z, 2-7)")
    return raw


def looks_like(s: str) -> bool:
    """Whether ``s`` is spelled like a content id (rather than a model path)."""
    return s.startswith(PREFIX) and len(s) == len(PREFIX) + _LEN
