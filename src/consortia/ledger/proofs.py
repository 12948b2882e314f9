"""What a light client checks, with no database: state proofs and transaction proofs.

State commitment (a compact sparse Merkle tree, as in Diem's Jellyfish tree):
- a key sits on the path given by the 256 bits of sha256(key), most significant bit first;
- leaf  = sha256(0x00 || key_hash || value_hash), with value_hash = sha256(value);
- inner = sha256(0x01 || left || right);
- an empty subtree hashes to 32 zero bytes;
- a leaf sits at the shallowest depth where it is alone in its subtree, so a tree of n keys
  is about log2(n) deep, and its shape depends only on the set of keys.

The domain bytes make a leaf impossible to pass off as an inner node, which is what makes a
proof that ends early (at a leaf or an empty slot) sound.
"""

from __future__ import annotations

import msgspec

from consortia.crypto import ZERO_HASH, sha256, verify_merkle_proof
from consortia.types import CodecError, Header
from consortia.types.eth import tx_id_of

HASH_BYTES = 32
KEY_BITS = 256
LEAF_TAG = b"\x00"
INNER_TAG = b"\x01"
EMPTY_HASH = ZERO_HASH


def key_hash(key: bytes) -> bytes:
    return sha256(key)


def value_hash(value: bytes) -> bytes:
    return sha256(value)


def leaf_hash(k_hash: bytes, v_hash: bytes) -> bytes:
    return sha256(LEAF_TAG + k_hash + v_hash)


def inner_hash(left: bytes, right: bytes) -> bytes:
    return sha256(INNER_TAG + left + right)


def bit_at(k_hash: bytes, depth: int) -> int:
    """The bit of the path taken below `depth` (0 = left, 1 = right)."""
    return (k_hash[depth >> 3] >> (7 - (depth & 7))) & 1


def shares_prefix(a: bytes, b: bytes, bits: int) -> bool:
    """True when the first `bits` bits of a and b are equal."""
    whole, rest = divmod(bits, 8)
    if a[:whole] != b[:whole]:
        return False
    if rest == 0:
        return True
    mask = (0xFF << (8 - rest)) & 0xFF
    return (a[whole] & mask) == (b[whole] & mask)


class StateProof(msgspec.Struct, array_like=True, frozen=True):
    """Proof that `key` has `value` (or, with value None, is absent) under a state root.

    `siblings` runs from the root down: siblings[d] is the hash of the subtree beside the
    key's path at depth d + 1. The path ends at depth len(siblings) in one of three ways:
    the key's own leaf (inclusion), an empty slot (absence), or the leaf of another key whose
    hash shares the first len(siblings) bits (absence; `other_key_hash`/`other_value_hash`).
    `height` is the block whose state root the proof was made against (informative).
    """

    key: bytes
    value: bytes | None
    siblings: list[bytes]
    other_key_hash: bytes = b""
    other_value_hash: bytes = b""
    height: int = -1


def _terminal_hash(k_hash: bytes, value: bytes | None, proof: StateProof) -> bytes | None:
    """Hash of the node where the proof's path ends, or None when the proof is malformed."""
    depth = len(proof.siblings)
    has_other = bool(proof.other_key_hash or proof.other_value_hash)
    if value is not None:
        return None if has_other else leaf_hash(k_hash, value_hash(value))
    if not has_other:
        return EMPTY_HASH
    other_kh, other_vh = proof.other_key_hash, proof.other_value_hash
    if len(other_kh) != HASH_BYTES or len(other_vh) != HASH_BYTES or other_kh == k_hash:
        return None
    if not shares_prefix(other_kh, k_hash, depth):
        return None
    return leaf_hash(other_kh, other_vh)


def verify_state_proof(state_root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True when the proof shows `key` = `value` (None: `key` absent) under `state_root`.

    Never raises on a bad proof; it returns False.
    """
    if proof.key != key or proof.value != value:
        return False
    if len(proof.siblings) > KEY_BITS or any(len(s) != HASH_BYTES for s in proof.siblings):
        return False
    k_hash = key_hash(key)
    node = _terminal_hash(k_hash, value, proof)
    if node is None:
        return False
    for depth in range(len(proof.siblings) - 1, -1, -1):
        sibling = proof.siblings[depth]
        node = inner_hash(sibling, node) if bit_at(k_hash, depth) else inner_hash(node, sibling)
    return node == state_root


class TxProof(msgspec.Struct, array_like=True, frozen=True):
    """Proof that a transaction is at `index` of the block at `height`.

    `siblings` is the Merkle path of consortia.crypto.merkle over the block's encoded
    envelopes; `header` lets a client check the block against a commit certificate.
    """

    tx_id: bytes
    height: int
    index: int
    tx_count: int
    siblings: list[bytes]
    header: Header


def verify_tx_proof(header_tx_root: bytes, tx_bytes: bytes, proof: TxProof) -> bool:
    """True when `tx_bytes` (an envelope or Ethereum transaction) is committed by `header_tx_root`.

    Also checks that the proof's header carries that root, height and count, and that the
    transaction's id is `proof.tx_id`. Never raises on a bad proof; it returns False.
    """
    header = proof.header
    if header.tx_root != header_tx_root or header.height != proof.height:
        return False
    if header.tx_count != proof.tx_count:
        return False
    try:
        tx_id = tx_id_of(tx_bytes)
    except CodecError:
        return False
    if tx_id != proof.tx_id:
        return False
    return verify_merkle_proof(header_tx_root, tx_bytes, proof.index, proof.tx_count, list(proof.siblings))
