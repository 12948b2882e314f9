"""Ed25519 arithmetic from first principles (RFC 8032, ZIP-215), slow and only for tests.

It builds the edge-case signatures that no signing library produces: a nonce point R with
a small-order component, S not reduced modulo L, keys of small order.
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int]  # affine (x, y)
IDENTITY: Point = (0, 1)


def add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x, y


def mul(k: int, point: Point) -> Point:
    out = IDENTITY
    while k:
        if k & 1:
            out = add(out, point)
        point = add(point, point)
        k >>= 1
    return out


def encode(point: Point) -> bytes:
    x, y = point
    return (y | (x & 1) << 255).to_bytes(32, "little")


def decode_zip215(data: bytes) -> Point | None:
    """ZIP-215 decoding: y may be unreduced (y >= p), and x = 0 may carry either sign bit."""
    value = int.from_bytes(data, "little")
    sign, y = value >> 255, (value & ((1 << 255) - 1)) % P
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    xx = u * pow(v, P - 2, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P:
        return None
    if x & 1 != sign:
        x = (P - x) % P  # x = 0 stays 0: "negative zero" is accepted
    return x, y


BASE: Point = (
    15112221349535400772501151409588531511454012693041857206046113283949847762202,
    4 * pow(5, P - 2, P) % P,
)


def torsion() -> list[Point]:
    """The eight points of small order (the multiples of one point of order 8)."""
    y = 2
    while True:
        point = decode_zip215(y.to_bytes(32, "little"))
        y += 1
        if point is None:
            continue
        t = mul(L, point)  # kills the prime-order part, leaves the torsion part
        if mul(4, t) != IDENTITY:
            return [mul(k, t) for k in range(8)]


def small_order_encodings() -> set[bytes]:
    """Every 32-byte string that ZIP-215 decodes to a point of small order."""
    out = set()
    for x, y in torsion():
        for y_bytes in (y, y + P):
            if y_bytes >= 2**255:
                continue
            for sign in (0, 1) if x == 0 else (x & 1,):
                out.add((y_bytes | sign << 255).to_bytes(32, "little"))
    return out


def secret_scalar(seed: bytes) -> int:
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    return (a & ((1 << 254) - 8)) | (1 << 254)


def public_key(seed: bytes) -> bytes:
    return encode(mul(secret_scalar(seed), BASE))


def sign_with_nonce_point(seed: bytes, message: bytes, r: int, extra: Point = IDENTITY) -> bytes:
    """A signature whose R is r·B + `extra`: with `extra` of small order it satisfies the
    cofactored equation but not the cofactorless one."""
    a, key = secret_scalar(seed), public_key(seed)
    nonce = encode(add(mul(r, BASE), extra))
    k = int.from_bytes(hashlib.sha512(nonce + key + message).digest(), "little") % L
    return nonce + ((r + k * a) % L).to_bytes(32, "little")
