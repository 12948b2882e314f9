"""A node's pool and Ethereum nonces: gaps wait, arrival order does not matter, limits hold.

Each test drives an in-process node (tests/node/conftest.py's run_node) through its submit
endpoint, as an Ethereum client's raw transactions would arrive.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from consortia.execution.evm.layout import read_account
from consortia.execution.executor import TxInput
from consortia.mempool import PoolLimits
from consortia.node.runtime import CommitInfo
from consortia.types import Block, CommitCertificate
from consortia.types.eth import decode_eth_transaction, eth_chain_id, keccak256, sign_eth_transaction
from tests.node.conftest import Harness, run_node

from .evm_kit import ALICE, ALICE_KEY, BOB, BOB_KEY
from .node_kit import permit, submit


def signer(h: Harness, key: bytes) -> Any:
    chain_id = eth_chain_id(h.node.config.chain_id, h.node.config.channel)

    def sign(nonce: int, gas: int = 21_000, value: int = 0) -> bytes:
        return sign_eth_transaction(key, chain_id=chain_id, nonce=nonce, gas=gas, to=BOB, value=value)

    return sign


async def committed(h: Harness, raws: list[bytes]) -> list[CommitInfo]:
    infos = await asyncio.gather(*(h.node.wait_committed(keccak256(raw), 10) for raw in raws))
    assert all(info is not None for info in infos), infos
    return [info for info in infos if info is not None]


def position(info: CommitInfo) -> tuple[int, int]:
    return info.height, info.index


def test_a_nonce_gap_waits_then_both_commit_in_order(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        sign = signer(h, ALICE_KEY)
        later = sign(1)
        resp = await submit(h, later, wait=False)
        assert resp.json()["status"] == "pending", resp.text
        assert (h.node.mempool.queued_count, h.node.mempool.ready_count) == (1, 0)
        assert h.node.eth_next_nonce(ALICE) == 0
        first = sign(0)
        resp = await submit(h, first)
        assert resp.json()["receipt"]["status"] == "ok", resp.text
        done_first, done_later = await committed(h, [first, later])
        # Had nonce 1 run before nonce 0 it would be INVALID (a nonce gap): it waited.
        assert done_later.receipt.status == done_first.receipt.status == 0
        assert position(done_first) < position(done_later)
        assert read_account(h.node.ledger.state, ALICE).nonce == 2
        assert len(h.node.mempool) == 0

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_forwarded_out_of_order_are_proposed_in_nonce_order(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        await permit(h, BOB, "org2")
        alice, bob = signer(h, ALICE_KEY), signer(h, BOB_KEY)
        raws = [alice(n) for n in range(5)]
        # As gossip from several validators may reach the leader: reversed, interleaved.
        arrival = [raws[4], bob(1), raws[2], raws[3], bob(0), raws[1], raws[0]]
        for raw in arrival:
            await h.node.submit(raw, forwarded=True)
        infos = await committed(h, [*raws, bob(0), bob(1)])
        assert all(i.receipt.status == 0 for i in infos), [i.receipt.error for i in infos]
        alice_positions = [position(i) for i in infos[:5]]
        assert alice_positions == sorted(alice_positions)
        assert position(infos[5]) < position(infos[6])
        assert read_account(h.node.ledger.state, ALICE).nonce == 5

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_pool_refusals_have_codes_and_store_nothing(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        h.node.mempool.limits = PoolLimits(eth_queued_per_sender_max=2, eth_nonce_gap_max=10)
        sign = signer(h, ALICE_KEY)
        for nonce in (3, 5):
            assert (await submit(h, sign(nonce), wait=False)).json()["status"] == "pending"
        assert h.node.eth_next_nonce(ALICE) == 0
        refusals = {
            "nonce_taken": sign(3, gas=30_000),  # another transaction with a pending nonce
            "nonce_gap_too_large": sign(11),  # 11 beyond the next nonce, 0
            "account_queue_full": sign(4),  # 3 and 5 already wait
            "gas_limit": sign(6, gas=h.node.config.block.evm_tx_gas_max + 1),
        }
        status = {"nonce_taken": 409, "account_queue_full": 429}  # a conflict; a busy sender
        for code, raw in refusals.items():
            resp = await submit(h, raw, wait=False)
            assert (resp.status_code, resp.json()["error"]["code"]) == (status.get(code, 400), code), (
                resp.text
            )
            assert not h.node.is_pending(keccak256(raw))
        assert (len(h.node.mempool), h.node.mempool.queued_count) == (2, 2)

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_a_pending_nonce_used_by_another_committed_tx_is_dropped(
    evm_crypto_dir: Path, tmp_path: Path
) -> None:
    """A block proposed elsewhere uses nonces this node's pool holds other transactions for."""

    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        sign = signer(h, ALICE_KEY)
        ours = sign(1)
        await submit(h, ours, wait=False)
        assert h.node.is_pending(keccak256(ours))
        # Another validator's block: nonce 0, then a different transaction with nonce 1.
        theirs = [sign(0), sign(1, gas=30_000)]
        node, head = h.node, h.node.ledger.head
        assert head is not None
        inputs = [TxInput(keccak256(r), decode_eth_transaction(r)) for r in theirs]
        block = node.blocks.build(
            node.config, "elsewhere", head.height + 1, head.hash, head.timestamp_ms + 1, inputs, theirs, b""
        )
        cert = CommitCertificate(block.header.height, block.hash, [node.signer.sign_block(block.hash)])
        await node.apply_synced(Block(block.header, block.txs, cert))
        assert read_account(node.ledger.state, ALICE).nonce == 2
        assert not node.is_pending(keccak256(ours))
        assert len(node.mempool) == 0 and keccak256(ours) not in node._pending
        # The account goes on from its committed nonce.
        assert (await submit(h, sign(2))).json()["receipt"]["status"] == "ok"

    run_node(evm_crypto_dir, tmp_path / "net", body)
