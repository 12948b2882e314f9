"""Solo engine, as a transcript: events in, actions out."""

import pytest

from consortia.consensus import (
    BlockSigner,
    BuildProposal,
    CommitBlock,
    Committed,
    ProposalBuilt,
    SoloEngine,
    Tick,
)
from consortia.crypto import ED25519, ZERO_HASH
from consortia.types import Block, BlockLimits, Header, commit_signing_bytes


def engine(txs_max: int = 3, wait_ms: int = 50) -> SoloEngine:
    signer = BlockSigner(b"node-cert", ED25519.generate())
    return SoloEngine(
        "peer0", signer, BlockLimits(txs_max=txs_max, bytes_max=10_000, wait_ms=wait_ms), 0, ZERO_HASH
    )


def block(height: int, parent: bytes) -> Block:
    h = Header("c", "main", height, parent, 1, "peer0", ZERO_HASH, ZERO_HASH, ZERO_HASH, 0)
    return Block(h, [])


def test_transcript_cut_on_wait_then_sign_then_commit() -> None:
    e = engine()
    assert e.step(Tick(0, pending_txs=0)) == []
    assert e.step(Tick(10, pending_txs=1, pending_bytes=100)) == []  # starts waiting
    assert e.step(Tick(40, pending_txs=1, pending_bytes=100)) == []  # 30 ms < 50 ms
    assert e.step(Tick(60, pending_txs=1, pending_bytes=100)) == [BuildProposal(1, ZERO_HASH)]
    assert e.step(Tick(70, pending_txs=1)) == []  # a build is in flight: no second one
    b = block(1, ZERO_HASH)
    (commit,) = e.step(ProposalBuilt(b))
    assert isinstance(commit, CommitBlock)
    assert commit.certificate.block_hash == b.hash and commit.certificate.height == 1
    sig = commit.certificate.signatures[0]
    assert ED25519.verify(e.signer.key.public_key, commit_signing_bytes(b.hash), sig.signature)
    assert e.step(Committed(1, b.hash)) == []
    assert e.status()["height"] == 1
    assert e.step(Tick(80, pending_txs=3)) == [BuildProposal(2, b.hash)]  # full block: no wait


def test_stale_proposal_is_dropped() -> None:
    e = engine()
    e.step(Tick(0, pending_txs=5))
    assert e.step(ProposalBuilt(block(7, ZERO_HASH))) == []
    assert e.step(Tick(1, pending_txs=5)) == [BuildProposal(1, ZERO_HASH)]


def test_bad_limits_refused() -> None:
    with pytest.raises(ValueError):
        engine(txs_max=0)
