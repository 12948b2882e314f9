"""The one hash function that reaches blocks, roots and ids."""

import hashlib

HASH_BYTES = 32
ZERO_HASH = bytes(HASH_BYTES)

_new_sha256 = hashlib.sha256  # bound once: this runs for every id, value and header


def sha256(data: bytes) -> bytes:
    return _new_sha256(data).digest()
