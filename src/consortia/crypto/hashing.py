"""The one hash function that reaches blocks, roots and ids."""

import hashlib

HASH_BYTES = 32
ZERO_HASH = bytes(HASH_BYTES)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
