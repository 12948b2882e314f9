import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.crypto import (
    SUITES,
    BatchVerifier,
    InvalidKey,
    VerifyJob,
    merkle_proof,
    merkle_root,
    suite_by_name,
    verify_merkle_proof,
)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_sign_verify_and_tamper(name: str) -> None:
    suite = suite_by_name(name)
    key = suite.generate()
    sig = key.sign(b"payload")
    assert suite.verify(key.public_key, b"payload", sig)
    assert not suite.verify(key.public_key, b"payloaD", sig)
    assert not suite.verify(key.public_key, b"payload", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not suite.verify(key.public_key, b"payload", b"short")
    assert suite.private_from_bytes(key.raw).public_key == key.public_key
    other = suite.generate()
    assert not suite.verify(other.public_key, b"payload", sig)


@pytest.mark.parametrize("name", ["secp256k1", "p256"])
def test_high_s_signatures_refused(name: str) -> None:
    suite = suite_by_name(name)
    n = {
        "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
        "p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    }[name]
    key = suite.generate()
    sig = key.sign(b"m")
    s = int.from_bytes(sig[32:], "big")
    high = sig[:32] + (n - s).to_bytes(32, "big")
    assert suite.verify(key.public_key, b"m", sig)
    assert not suite.verify(key.public_key, b"m", high)


def test_unknown_suite() -> None:
    with pytest.raises(InvalidKey):
        suite_by_name("rsa")


def test_batch_verifier_keeps_order_and_finds_bad_ones() -> None:
    key = suite_by_name("ed25519").generate()
    jobs = [VerifyJob("ed25519", key.public_key, b"%d" % i, key.sign(b"%d" % i)) for i in range(300)]
    jobs[17] = jobs[17]._replace(message=b"forged")
    jobs[250] = jobs[250]._replace(signature=bytes(64))
    verifier = BatchVerifier(2)
    try:
        results = verifier.verify(jobs)
    finally:
        verifier.close()
    assert [i for i, ok in enumerate(results) if not ok] == [17, 250]


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=40), st.data())
def test_merkle_proofs(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle_proof(leaves, i)
    assert verify_merkle_proof(root, leaves[i], i, len(leaves), proof)
    assert not verify_merkle_proof(root, leaves[i] + b"!", i, len(leaves), proof)
    if len(leaves) > 1:
        j = (i + 1) % len(leaves)
        assert not verify_merkle_proof(root, leaves[i], j, len(leaves), proof) or leaves[i] == leaves[j]
