"""Ed25519 verification with the strict rules of ed25519-dalek's
``verify_strict`` (what nodes and validators apply): OpenSSL's check (through
``cryptography``: canonical S, R compared as bytes), and refusal of a public
key or an R of small order, which the plain RFC 8032 check lets through."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decompress(b: bytes) -> tuple[int, int] | None:
    """The point an encoding names (y reduced mod p, as dalek reads it), or None."""
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    sign = b[31] >> 7
    y %= _P
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if x == 0 and sign:
        # dalek accepts -0 and reads it as 0
        return (0, y)
    if x & 1 != sign:
        x = _P - x
    return (x, y)


def _add(p: tuple[int, int], q: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p, q
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return (x3, y3)


def small_order(encoding: bytes) -> bool:
    """Whether the point is of order dividing 8 (8·P is the identity)."""
    p = _decompress(encoding)
    if p is None:
        return False
    for _ in range(3):
        p = _add(p, p)
    return p == (0, 1)


def verify_strict(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public``'s over ``message`` under the strict rules."""
    if len(public) != 32 or len(signature) != 64:
        return False
    if _decompress(public) is None or small_order(public) or small_order(signature[:32]):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
