"""Binary Merkle trees over ordered lists (transactions, receipts), with inclusion proofs.

The shape follows RFC 6962: leaves are hashed as H(0x00 || leaf), inner nodes as
H(0x01 || left || right), and a list of n leaves splits at the largest power of two
below n. Domain separation makes a leaf impossible to pass off as an inner node.
"""

from __future__ import annotations

import hashlib

from consortia.crypto.hashing import ZERO_HASH, sha256

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    # Level by level, pairing neighbours and carrying an odd last node up unchanged: the
    # same tree as splitting at the largest power of two below n, without the recursion
    # and list copies (hashes inlined: this runs twice per transaction per block).
    level = hashes
    while len(level) > 1:
        up = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            up.append(level[-1])
        level = up
    return level[0]


def merkle_root(leaves: list[bytes]) -> bytes:
    """Root of the leaves; the empty list has the all-zero root."""
    if not leaves:
        return ZERO_HASH
    return _root_of_hashes([_sha256(b"\x00" + x).digest() for x in leaves])


def merkle_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """Sibling hashes from the leaf up to the root for `leaves[index]`."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} out of range 0..{len(leaves) - 1}")
    hashes = [leaf_hash(x) for x in leaves]
    path: list[bytes] = []

    def walk(nodes: list[bytes], i: int) -> None:
        if len(nodes) == 1:
            return
        k = _split(len(nodes))
        if i < k:
            walk(nodes[:k], i)
            path.append(_root_of_hashes(nodes[k:]))
        else:
            walk(nodes[k:], i - k)
            path.append(_root_of_hashes(nodes[:k]))

    walk(hashes, index)
    return path


def verify_merkle_proof(root: bytes, leaf: bytes, index: int, size: int, proof: list[bytes]) -> bool:
    """True when `leaf` sits at `index` of a `size`-leaf tree with this `root`. Pure function."""
    if not 0 <= index < size:
        return False

    def rebuild(i: int, n: int, path: list[bytes]) -> bytes | None:
        # Descend to find the order in which siblings were appended (deepest first).
        if n == 1:
            return leaf_hash(leaf) if not path else None
        k = _split(n)
        if not path:
            return None
        sibling, rest = path[-1], path[:-1]
        if i < k:
            inner = rebuild(i, k, rest)
            return None if inner is None else node_hash(inner, sibling)
        inner = rebuild(i - k, n - k, rest)
        return None if inner is None else node_hash(sibling, inner)

    return rebuild(index, size, list(proof)) == root
