"""Hashes and signature suites behind one interface, plus batch verification."""

from consortia.crypto.batch import BatchVerifier, VerifierError, VerifyJob
from consortia.crypto.hashing import HASH_BYTES, ZERO_HASH, sha256
from consortia.crypto.merkle import merkle_proof, merkle_root, verify_merkle_proof
from consortia.crypto.suites import (
    ED25519,
    P256,
    SECP256K1,
    SUITES,
    InvalidKey,
    PrivateKey,
    SignatureSuite,
    ed25519_verify,
    public_key_of,
    suite_by_name,
)

__all__ = [
    "ED25519",
    "HASH_BYTES",
    "P256",
    "SECP256K1",
    "SUITES",
    "ZERO_HASH",
    "BatchVerifier",
    "InvalidKey",
    "PrivateKey",
    "SignatureSuite",
    "VerifierError",
    "VerifyJob",
    "ed25519_verify",
    "merkle_proof",
    "merkle_root",
    "public_key_of",
    "sha256",
    "suite_by_name",
    "verify_merkle_proof",
]
