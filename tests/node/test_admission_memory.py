"""Admission's memories: committed tx ids answered from memory, verified transactions not
checked twice, and the batch submission path refusing exactly what single submission does."""

from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import Future
from pathlib import Path

import msgspec
import pytest

from consortia.crypto import BatchVerifier, VerifyJob
from consortia.execution.executor import Executor, TxInput
from consortia.execution.genesis import config_from_state
from consortia.identity.msp import MSP
from consortia.node.blocks import BlockProcessor, BlockRejected
from consortia.node.committed import CommittedTxIds
from consortia.node.runtime import open_ledger_with_genesis
from consortia.node.verified import VerifiedTxs
from consortia.types import Block, Envelope, decode, decode_envelope, encode
from tests.node.conftest import Harness, run_node


def _ids(n: int) -> list[bytes]:
    return [hashlib.sha256(os.urandom(16)).digest() for _ in range(n)]


def test_committed_ids_have_no_false_negatives_and_ask_the_ledger_only_when_unsure() -> None:
    old, new = _ids(3_000), _ids(150_000)  # enough new ids to grow a second filter layer
    in_ledger = set(old)
    asked: list[bytes] = []

    def lookup(tx_id: bytes) -> bool:
        asked.append(tx_id)
        return tx_id in in_ledger

    committed = CommittedTxIds(lookup, known=old, recent_max=1_000, first_capacity=50_000)
    assert all(tx_id in committed for tx_id in old)  # from the ledger's index at start-up
    in_ledger.update(new)
    committed.add_committed(new)
    assert committed.filter_layers == 3  # 50k + 100k + the start of a 200k layer
    assert all(tx_id in committed for tx_id in new[-1_000:])
    asked.clear()
    assert all(tx_id in committed for tx_id in new[:-1_000])  # beyond the recent set
    assert len(asked) == len(new) - 1_000  # those the ledger confirmed
    asked.clear()
    strangers = _ids(20_000)
    assert not any(tx_id in committed for tx_id in strangers)
    assert len(asked) < 400  # the filter rules out almost all of them (~1% expected)
    assert b"short id" not in committed and b"" not in committed


def test_verified_memory_is_keyed_by_the_exact_bytes_and_bounded() -> None:
    memory = VerifiedTxs(max_entries=2)
    a, b, c = (TxInput(bytes([i]) * 32, None, True) for i in range(3))  # type: ignore[arg-type]
    memory.add(b"a", a)
    memory.add(b"b", b)
    memory.add(b"c", c)  # the oldest goes
    assert len(memory) == 2
    assert memory.take(b"a") is None
    assert memory.take(b"b") is b and memory.take(b"b") is None  # taken once
    memory.forget([b"c"])
    assert memory.take(b"c") is None


class CountingVerifier(BatchVerifier):
    def __init__(self) -> None:
        super().__init__(workers=1)
        self.jobs: list[VerifyJob] = []

    def verify(self, jobs: list[VerifyJob]) -> list[bool]:
        self.jobs.extend(jobs)
        return super().verify(jobs)


def test_batch_submission_and_blocks_reuse_admission_checks(crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> list[Block]:
        admin, alice = h.who("org1", "admin@org1"), h.who("org1")
        issue = h.sign(admin, "token", "issue", "org1/client0@org1", 100)
        assert (await h.submit(issue.raw)).json()["status"] == "committed"
        good = [h.sign(alice, "token", "transfer", "org2/bob", 1).raw for _ in range(3)]
        env = decode(good[0], Envelope)
        forged = encode(Envelope(env.payload, bytes(64)))
        float_arg = h.sign(alice, "token", "transfer", "org2/x", 1.5).raw
        batch = [good[0], b"\x00garbage", good[1], good[0], forged, float_arg, issue.raw, good[2]]
        url = "/v1/channels/main/transactions/batch"
        resp = await h.http.post(url, content=msgspec.msgpack.encode(batch))
        assert resp.status_code == 200, resp.text
        results = resp.json()["results"]
        codes = [r["error"]["code"] if "error" in r else r["status"] for r in results]
        assert codes == [
            "pending",
            "malformed",
            "pending",
            "duplicate_transaction",  # the same bytes earlier in the batch
            "bad_signature",
            "malformed",
            "duplicate_transaction",  # already committed
            "pending",
        ]
        assert results[0]["tx_id"] == hashlib.sha256(env.payload).hexdigest()
        for raw in good:
            tx_id = decode_envelope(raw)[0].tx_id
            assert await h.node.wait_committed(tx_id, 10) is not None
        # each refusal answers exactly as single submission does
        fresh = decode(h.sign(alice, "token", "transfer", "org2/bob", 1).raw, Envelope)
        forged_fresh = encode(Envelope(fresh.payload, bytes(64)))
        for raw, status, code in (
            (forged_fresh, 401, "bad_signature"),
            (good[1], 409, "duplicate_transaction"),
        ):
            single = await h.submit(raw)
            assert single.status_code == status and single.json()["error"]["code"] == code
        # the request itself: wrong channel, not an array, too many transactions, too large
        for path, content, status, code in (
            ("nope", msgspec.msgpack.encode([]), 404, "unknown_channel"),
            ("main", b"\x01", 400, "malformed"),
            ("main", msgspec.msgpack.encode([b""] * 10_001), 413, "batch_too_large"),
            ("main", b"x" * (5 << 20), 413, "body_too_large"),
        ):
            resp = await h.http.post(f"/v1/channels/{path}/transactions/batch", content=content)
            assert resp.status_code == status and resp.json()["error"]["code"] == code, resp.text
        spec = (await h.http.get("/openapi.json")).json()
        assert "post" in spec["paths"]["/v1/channels/{channel}/transactions/batch"]
        blocks = [h.node.ledger.block(i) for i in range(h.node.ledger.height + 1)]
        assert all(b is not None for b in blocks)
        return [b for b in blocks if b is not None]

    blocks = run_node(crypto_dir, tmp_path / "net", body)
    assert sum(len(b.txs) for b in blocks[1:]) == 4

    def replay(where: str, memory: VerifiedTxs) -> tuple[bytes, int]:
        ledger = open_ledger_with_genesis(tmp_path / where, blocks[0])
        verifier = CountingVerifier()
        try:
            with ledger:
                config = config_from_state(ledger.state)
                processor = BlockProcessor(ledger, Executor(MSP), verifier, memory)
                for block in blocks[1:]:
                    assert block.certificate is not None
                    executed = processor.commit(config, block, block.certificate)
                    assert executed is not None
                    config = executed.outcome.config
                    assert all(r.tx_id in processor.committed for r in executed.outcome.receipts)
                return ledger.state_root, len(verifier.jobs)
        finally:
            verifier.close()

    root, checked = replay("cold", VerifiedTxs())
    assert checked == 4  # every signature verified
    memory = VerifiedTxs()
    for block in blocks[1:]:
        for raw in block.txs:
            env, tx = decode_envelope(raw)
            memory.add(raw, TxInput(env.tx_id, tx, True))
    assert replay("warm", memory) == (root, 0)  # same result, nothing verified twice
    assert len(memory) == 0

    # A remembered transaction vouches for its exact bytes only: a block carrying the same
    # payload with another signature is verified, and refused.
    block = blocks[-1]
    env, tx = decode_envelope(block.txs[0])
    memory.add(block.txs[0], TxInput(env.tx_id, tx, True))
    forged_block = Block(block.header, [encode(Envelope(env.payload, bytes(64)))])
    ledger = open_ledger_with_genesis(tmp_path / "forged", blocks[0])
    verifier = CountingVerifier()
    try:
        with ledger:
            processor = BlockProcessor(ledger, Executor(MSP), verifier, memory)
            config = config_from_state(ledger.state)
            for earlier in blocks[1:-1]:
                assert earlier.certificate is not None
                processor.commit(config, earlier, earlier.certificate)
            with pytest.raises(BlockRejected):
                processor.execute(config, forged_block)
    finally:
        verifier.close()


def test_signature_batcher_joins_the_requests_of_one_loop_turn() -> None:
    from consortia.crypto import ED25519
    from consortia.node.admission import SignatureBatcher

    key = ED25519.generate()
    jobs = [VerifyJob("ed25519", key.public_key, bytes([i]), key.sign(bytes([i]))) for i in range(100)]
    jobs[7] = jobs[7]._replace(signature=bytes(64))

    class Recording(BatchVerifier):
        def __init__(self) -> None:
            super().__init__(workers=2)
            self.sizes: list[int] = []

        def submit(self, jobs: list[VerifyJob]) -> list[Future[list[bool]]]:
            self.sizes.append(len(jobs))
            return super().submit(jobs)

    async def main() -> tuple[list[bool], list[list[bool]], list[int]]:
        verifier = Recording()
        try:
            batcher = SignatureBatcher(verifier, flush_jobs=64)
            alone = await batcher.verify_many(jobs)  # large enough to start at once
            small = batcher.verify_many(jobs[:10]), batcher.verify_many(jobs[10:20]), batcher.verify_many([])
            assert verifier.sizes == [100]  # the small ones wait for the end of the turn
            together = list(await asyncio.gather(*small))
            grown = batcher.verify_many(jobs[20:30]), batcher.verify_many(jobs[30:90])
            assert verifier.sizes == [100, 20, 70]  # the second made it large enough to start
            together += await asyncio.gather(*grown)
            return alone, together, verifier.sizes
        finally:
            verifier.close()

    alone, together, sizes = asyncio.run(main())
    assert alone == [i != 7 for i in range(100)]
    assert together == [[i != 7 for i in range(10)], [True] * 10, [], [True] * 10, [True] * 60]
    assert sizes == [100, 20, 70]  # nothing more started at the end of the last turn
