"""Light-client checks: pure functions, no database."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_kit import envelope, tx_id

from consortia.crypto import ZERO_HASH, merkle_proof, merkle_root, sha256
from consortia.ledger import StateProof, TxProof, verify_state_proof, verify_tx_proof
from consortia.ledger.proofs import bit_at, inner_hash, leaf_hash, shares_prefix
from consortia.types import Header, encode


def test_empty_tree_proves_absence_of_anything() -> None:
    assert verify_state_proof(ZERO_HASH, b"k", None, StateProof(b"k", None, []))
    assert not verify_state_proof(ZERO_HASH, b"k", b"v", StateProof(b"k", b"v", []))


def two_key_tree() -> tuple[bytes, bytes, bytes, bytes]:
    """Keys a and b whose hashes differ in the first bit: root = inner(leaf, leaf)."""
    a = b"a"
    b = next(k for k in (b"%d" % i for i in range(100)) if bit_at(sha256(k), 0) != bit_at(sha256(a), 0))
    la, lb = leaf_hash(sha256(a), sha256(b"va")), leaf_hash(sha256(b), sha256(b"vb"))
    root = inner_hash(la, lb) if bit_at(sha256(a), 0) == 0 else inner_hash(lb, la)
    return a, b, root, lb


def test_hand_built_tree_proofs() -> None:
    a, b, root, lb = two_key_tree()
    la = leaf_hash(sha256(a), sha256(b"va"))
    assert verify_state_proof(root, a, b"va", StateProof(a, b"va", [lb]))
    assert verify_state_proof(root, b, b"vb", StateProof(b, b"vb", [la]))
    # The proof's own key/value must be the ones asked about.
    assert not verify_state_proof(root, a, b"va", StateProof(b, b"va", [lb]))
    assert not verify_state_proof(root, a, b"va", StateProof(a, b"vb", [lb]))


def test_absence_by_another_leaf_must_share_the_prefix() -> None:
    a, b, root, _ = two_key_tree()
    # A key that shares a's first bit ends at a's leaf.
    c = next(k for k in (b"c%d" % i for i in range(100)) if bit_at(sha256(k), 0) == bit_at(sha256(a), 0))
    lb = leaf_hash(sha256(b), sha256(b"vb"))
    good = StateProof(c, None, [lb], sha256(a), sha256(b"va"))
    assert verify_state_proof(root, c, None, good)
    # b's leaf does not share c's first bit: refused even with a consistent-looking path.
    la = leaf_hash(sha256(a), sha256(b"va"))
    assert not verify_state_proof(root, c, None, StateProof(c, None, [la], sha256(b), sha256(b"vb")))
    # The "other" leaf cannot be the key itself, and hashes must be 32 bytes.
    assert not verify_state_proof(root, a, None, StateProof(a, None, [lb], sha256(a), sha256(b"va")))
    assert not verify_state_proof(root, c, None, StateProof(c, None, [lb], sha256(a)[:31], sha256(b"va")))
    # An inclusion proof may not carry another leaf.
    assert not verify_state_proof(root, a, b"va", StateProof(a, b"va", [lb], sha256(b), sha256(b"vb")))


def test_malformed_siblings_are_refused() -> None:
    a, _, root, lb = two_key_tree()
    assert not verify_state_proof(root, a, b"va", StateProof(a, b"va", [lb[:31]]))
    assert not verify_state_proof(root, a, b"va", StateProof(a, b"va", [lb] * 257))


@given(x=st.binary(min_size=32, max_size=32), y=st.binary(min_size=32, max_size=32), bits=st.integers(0, 256))
def test_shares_prefix_matches_bitwise_definition(x: bytes, y: bytes, bits: int) -> None:
    expected = all(bit_at(x, i) == bit_at(y, i) for i in range(bits))
    assert shares_prefix(x, y, bits) == expected


def test_state_proof_round_trips_the_canonical_codec() -> None:
    proof = StateProof(b"k", None, [ZERO_HASH], sha256(b"o"), sha256(b"v"), 9)
    assert msgspec.msgpack.decode(encode(proof), type=StateProof) == proof


# ------------------------------------------------------------------ tx proofs


def header_for(txs: list[bytes], height: int = 5) -> Header:
    return Header("c", "ch", height, ZERO_HASH, 0, "n0", merkle_root(txs), ZERO_HASH, ZERO_HASH, len(txs))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), data=st.data())
def test_tx_proofs_verify_and_tampering_fails(n: int, data: st.DataObject) -> None:
    txs = [envelope(i) for i in range(n)]
    header = header_for(txs)
    i = data.draw(st.integers(0, n - 1))
    proof = TxProof(tx_id(txs[i]), 5, i, n, merkle_proof(txs, i), header)
    assert verify_tx_proof(header.tx_root, txs[i], proof)
    other = envelope(1000)
    assert not verify_tx_proof(header.tx_root, other, proof)  # another transaction
    assert not verify_tx_proof(sha256(b"x"), txs[i], proof)  # another root
    if n > 1:
        j = (i + 1) % n
        assert not verify_tx_proof(header.tx_root, txs[i], msgspec.structs.replace(proof, index=j))
        assert not verify_tx_proof(
            header.tx_root, txs[j], msgspec.structs.replace(proof, tx_id=tx_id(txs[j]))
        )
        siblings = [sha256(s) for s in proof.siblings]
        assert not verify_tx_proof(header.tx_root, txs[i], msgspec.structs.replace(proof, siblings=siblings))
    assert not verify_tx_proof(header.tx_root, txs[i], msgspec.structs.replace(proof, height=6))
    assert not verify_tx_proof(header.tx_root, txs[i], msgspec.structs.replace(proof, tx_count=n + 1))


def test_tx_proof_refuses_bytes_that_are_not_an_envelope() -> None:
    txs = [b"not an envelope", envelope(1)]
    header = header_for(txs)
    proof = TxProof(sha256(b"not an envelope"), 5, 0, 2, merkle_proof(txs, 0), header)
    assert not verify_tx_proof(header.tx_root, txs[0], proof)
